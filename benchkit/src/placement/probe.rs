//! The supervisor's hook into a trial: applies a placement to the worker at spawn and observes
//! the worker from outside once per trial, after its model and threadpool exist (its warmup,
//! or first repetition or chunk), so that the look never overlaps a timed repetition when
//! there is a warmup.

use super::apply::Applier;
use super::observe::{observe, Observation};
use super::spec::Requested;
use crate::supervise::Phase;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

/// Observations by (worker pid, trial index); an error says why a look failed.
type Seen = BTreeMap<(u32, usize), Result<Observation, String>>;

/// A placement for [`TrialConfig::placement`](crate::supervise::TrialConfig::placement):
/// what to apply, and where the observations go. Clones share the observations.
#[derive(Debug, Clone)]
pub struct Probe {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    requested: Requested,
    applier: Applier,
    model: Option<PathBuf>,
    seen: Mutex<Seen>,
}

impl Probe {
    /// Applies `requested` to every worker; `model` is the model file, whose mapped pages
    /// are counted apart.
    pub fn new(requested: Requested, model: Option<PathBuf>) -> Self {
        let applier = Applier::new(&requested);
        Probe { inner: Arc::new(Inner { requested, applier, model, seen: Mutex::default() }) }
    }

    /// What is applied.
    pub fn requested(&self) -> &Requested {
        &self.inner.requested
    }

    pub(crate) fn install(&self, cmd: &mut Command) {
        self.inner.applier.install(cmd);
    }

    /// Called by the supervisor for each phase of worker `pid`'s trial `index`.
    pub(crate) fn on_phase(&self, pid: u32, index: usize, phase: Phase) {
        let first_work =
            matches!(phase, Phase::Warmup | Phase::Repetition { rep: 1, .. } | Phase::Chunk { chunk: 1, .. });
        if !first_work {
            return;
        }
        let mut seen = self.inner.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.entry((pid, index))
            .or_insert_with(|| observe(pid, self.inner.model.as_deref()).map_err(|e| e.to_string()));
    }

    /// Observes process `pid` now, as trial `index` (a server the harness started).
    pub fn observe_now(&self, pid: u32, index: usize) {
        let mut seen = self.inner.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.insert((pid, index), observe(pid, self.inner.model.as_deref()).map_err(|e| e.to_string()));
    }

    /// Every observation so far, by (worker pid, trial index), emptied.
    pub fn take(&self) -> Vec<((u32, usize), Result<Observation, String>)> {
        std::mem::take(&mut *self.inner.seen.lock().unwrap_or_else(|e| e.into_inner())).into_iter().collect()
    }
}
