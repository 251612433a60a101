//! Arms × rounds in a seeded, interleaved order: each trial placed, observed and verified, a
//! sched_ext scheduler attached around it and checked at its end.

use super::observe::{mismatches, ExtExpect, Observation};
use super::probe::Probe;
use super::report::{summarise, PlacementReport, TrialResult};
use super::scx::{preflight, AttachedScheduler, ScxSysfs};
use super::spec::{Arm, Requested};
use super::PlacementError;
use crate::bench::{BenchConfig, BenchRun, Point};
use crate::supervise::{Isolation, TrialConfig};
use crate::topology::Topology;
use crate::{Backend, LoadMode, Provenance};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// What each trial runs: the workload whose process is placed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Workload {
    /// A pp/tg grid; one sample per test and trial: its mean t/s.
    Bench(BenchConfig),
}

/// A placement comparison.
#[derive(Debug, Clone)]
pub struct PlacementConfig {
    /// The arms, the first the baseline unless [`baseline`](Self::baseline) names another.
    pub arms: Vec<Arm>,
    /// Trials per arm.
    pub rounds: u32,
    /// Seeds the order of the arms in each round and the bootstrap.
    pub seed: u64,
    /// The arm the others are compared against.
    pub baseline: Option<String>,
    /// What each trial runs (its isolation's worker and timeout are used; it must run in
    /// workers, which is where placement applies).
    pub workload: Workload,
    /// sched_ext's sysfs directory.
    pub scx: ScxSysfs,
    /// Where the kernel's ejection reason is read (`/dev/kmsg`).
    pub kernel_log: PathBuf,
}

impl PlacementConfig {
    /// A comparison of `arms` on `workload`, 5 rounds, seed 1, the live sched_ext sysfs.
    pub fn new(arms: Vec<Arm>, workload: Workload) -> Self {
        PlacementConfig {
            arms,
            rounds: 5,
            seed: 1,
            baseline: None,
            workload,
            scx: ScxSysfs::default(),
            kernel_log: PathBuf::from("/dev/kmsg"),
        }
    }

    /// The interleaved order: every round holds each arm once, shuffled by the seed.
    pub fn order(&self) -> Vec<(usize, u32)> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut order = Vec::with_capacity(self.arms.len() * self.rounds as usize);
        for round in 0..self.rounds {
            let mut arms: Vec<usize> = (0..self.arms.len()).collect();
            arms.shuffle(&mut rng);
            order.extend(arms.into_iter().map(|a| (a, round)));
        }
        order
    }

    fn check(&self) -> Result<usize, PlacementError> {
        if !cfg!(target_os = "linux") {
            return Err(PlacementError::Unsupported);
        }
        if self.arms.is_empty() {
            return Err(PlacementError::invalid("arm", "", "give at least one arm"));
        }
        if self.rounds == 0 {
            return Err(PlacementError::invalid("rounds", "0", "at least 1"));
        }
        let mut names = BTreeSet::new();
        for arm in &self.arms {
            arm.check()?;
            if !names.insert(arm.name.as_str()) {
                return Err(PlacementError::Arm { arm: arm.name.clone(), reason: "two arms have this name".into() });
            }
        }
        match &self.baseline {
            None => Ok(0),
            Some(b) => self
                .arms
                .iter()
                .position(|a| &a.name == b)
                .ok_or_else(|| PlacementError::invalid("baseline", b, "no arm has this name")),
        }
    }

    /// Runs every trial; `on_trial` sees each as it ends (write it out: a long comparison
    /// loses nothing to a later crash).
    ///
    /// # Errors
    /// [`PlacementError`] for an invalid configuration (an arm the machine cannot satisfy, a
    /// workload that places itself, an in-process workload); a trial that fails or whose
    /// placement did not hold is a result, not an error.
    pub fn run(
        &self,
        backend: &Backend,
        mut on_trial: impl FnMut(&TrialResult),
    ) -> Result<PlacementReport, PlacementError> {
        let baseline = self.check()?;
        let topo = Topology::read()?;
        let requested: Vec<Requested> = self.arms.iter().map(|a| a.resolve(&topo)).collect::<Result<_, _>>()?;
        let Workload::Bench(bench) = &self.workload;
        let points = bench.grid.points()?;
        check_bench(bench, &points, &self.arms)?;
        let Isolation::Worker(trial_config) = &bench.isolation else {
            return Err(PlacementError::Workload(
                "placement applies to worker processes: the workload cannot run in-process".into(),
            ));
        };
        let preflights: Vec<Option<String>> =
            self.arms.iter().map(|a| a.scheduler.as_ref().and_then(|s| preflight(s, &self.scx).err())).collect();
        let provenance = Provenance::now()
            .seed("placement_order", self.seed)
            .seed("prompt_tokens", bench.run.seed)
            .setting("arms", &self.arms)
            .setting("rounds", &self.rounds)
            .setting("baseline", &self.arms[baseline].name)
            .setting("workload", &serde_json::json!({ "bench": { "points": points, "run": bench.run } }))
            .setting("isolation", &"worker")
            .setting("trial_timeout_s", &trial_config.timeout.map(|t| t.as_secs_f64()))
            .setting("sched_ext_sysfs", &self.scx.root());
        let mut trials = Vec::new();
        for (position, (a, round)) in self.order().into_iter().enumerate() {
            let arm = &self.arms[a];
            let mut t = TrialResult::new(arm, round, position, &requested[a]);
            if let Some(why) = &preflights[a] {
                t.sched_ext_before = Some(self.scx.snapshot());
                t.invalid(why.clone());
            } else {
                self.run_trial(backend, bench, &points, trial_config, arm, &requested[a], &mut t);
            }
            on_trial(&t);
            trials.push(t);
        }
        Ok(summarise(provenance, &self.arms, &requested, baseline, self.rounds, self.seed, self.order_names(), trials))
    }

    fn order_names(&self) -> Vec<String> {
        self.order().into_iter().map(|(a, r)| format!("{}#{}", self.arms[a].name, r + 1)).collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn run_trial(
        &self,
        backend: &Backend,
        bench: &BenchConfig,
        points: &[Point],
        trial_config: &TrialConfig,
        arm: &Arm,
        requested: &Requested,
        t: &mut TrialResult,
    ) {
        let before = self.scx.snapshot();
        t.started_at = crate::provenance::rfc3339_now();
        let mut scheduler = None;
        match &arm.scheduler {
            None if !before.is_disabled() => {
                t.sched_ext_before = Some(before.clone());
                t.invalid(format!(
                    "sched_ext is {:?}{} before the trial: a scheduler this harness did not attach is running",
                    before.state,
                    before.ops.as_deref().map(|o| format!(" (ops {o})")).unwrap_or_default()
                ));
                return;
            }
            None => {}
            Some(spec) => match AttachedScheduler::attach(spec, &self.scx, &self.kernel_log) {
                Ok(s) => {
                    t.scheduler_pid = Some(s.pid());
                    t.sched_ext_before = Some(s.at_attach().clone());
                    scheduler = Some(s);
                }
                Err(e) => {
                    t.sched_ext_before = Some(self.scx.snapshot());
                    t.invalid(e.to_string());
                    return;
                }
            },
        }
        if t.sched_ext_before.is_none() {
            t.sched_ext_before = Some(before);
        }
        let model = points.first().map(|p| p.model.clone());
        let probe = Probe::new(requested.clone(), model);
        let config = TrialConfig { placement: Some(probe.clone()), ..trial_config.clone() };
        let points = placed_points(points, requested);
        let run = BenchRun::new(backend, points, bench.run.clone(), &Isolation::Worker(config), |_| {});
        let labels = metric_labels(run.planned_records());
        for (i, record) in run.enumerate() {
            if record.status.is_ok() {
                t.samples.insert(labels[i].clone(), record.avg_ts);
            } else {
                t.invalid(format!("{}: {}: {}", record.test, record.status.as_str(), record.error.unwrap_or_default()));
            }
        }
        // The end-of-trial check comes before anything else can change the state.
        let after = match scheduler.as_mut() {
            Some(s) => {
                let (snap, verdict) = s.check();
                if let Err(why) = verdict {
                    t.invalid(why);
                }
                snap
            }
            None => {
                let snap = self.scx.snapshot();
                let seq_moved = snap.enable_seq != t.sched_ext_before.as_ref().and_then(|b| b.enable_seq);
                if !snap.is_disabled() || seq_moved {
                    t.invalid(format!(
                        "sched_ext was not disabled throughout: state {:?}, enable_seq {:?} -> {:?}",
                        snap.state,
                        t.sched_ext_before.as_ref().and_then(|b| b.enable_seq),
                        snap.enable_seq
                    ));
                }
                snap
            }
        };
        t.sched_ext_after = Some(after);
        if let Some(s) = scheduler {
            t.detach = Some(s.detach());
        }
        let ext = match &arm.scheduler {
            None => ExtExpect::Off,
            Some(s) if s.partial => ExtExpect::Partial,
            Some(_) => ExtExpect::All,
        };
        let observations: Vec<Observation> = probe
            .take()
            .into_iter()
            .filter_map(|(_, o)| o.map_err(|e| t.invalid(format!("cannot observe the worker: {e}"))).ok())
            .collect();
        if observations.is_empty() && !t.samples.is_empty() {
            t.invalid("the worker was never observed while it ran".into());
        }
        for obs in &observations {
            for why in mismatches(requested, obs, ext, &mut t.unverified) {
                t.invalid(why);
            }
        }
        t.observed = observations;
    }
}

/// The workload's points with the arm's CPUs as llama.cpp's threadpool mask (and its strict
/// mode), and the model read without mmap when a memory policy is asked for.
fn placed_points(points: &[Point], req: &Requested) -> Vec<Point> {
    points
        .iter()
        .map(|p| {
            let mut p = p.clone();
            if let Some(cpus) = &req.cpus {
                let cpus: Vec<usize> = cpus.iter().map(|&c| c as usize).collect();
                p.cpu_mask = Some(crate::CpuMask::from_cpus(&cpus));
                p.cpu_strict = req.strict;
            }
            if req.mem.is_some() {
                p.model_params.load_mode = LoadMode::None;
            }
            p
        })
        .collect()
}

/// Refuses a workload whose own flags would override an arm's placement.
fn check_bench(bench: &BenchConfig, points: &[Point], arms: &[Arm]) -> Result<(), PlacementError> {
    let places_cpus = arms.iter().any(|a| a.placement.cpus.is_some());
    if places_cpus && points.iter().any(|p| p.cpu_mask.is_some() || p.cpu_strict) {
        return Err(PlacementError::Workload(
            "the workload sets its own CPU mask (-C/--cpu-strict) while an arm sets cpus=: give the CPUs in the arm"
                .into(),
        ));
    }
    if bench.run.numa != crate::Numa::Disabled {
        return Err(PlacementError::Workload(
            "--numa makes ggml set its own affinity at every graph compute, over any arm's cpus=: leave it out and use mem= and cpus="
                .into(),
        ));
    }
    if bench.run.priority != crate::Priority::Normal && arms.iter().any(|a| a.effective_policy().is_some()) {
        return Err(PlacementError::Workload(
            "--prio sets the threads' policy itself, over the arm's policy=: leave it out".into(),
        ));
    }
    Ok(())
}

/// A sample's name per planned record: its test, made unique by its position when tests
/// repeat (several models or thread counts).
fn metric_labels(records: &[crate::bench::BenchRecord]) -> Vec<String> {
    let count = |t: &str| records.iter().filter(|r| r.test == t).count();
    records
        .iter()
        .enumerate()
        .map(|(i, r)| if count(&r.test) > 1 { format!("{} [point {}]", r.test, i + 1) } else { r.test.clone() })
        .collect()
}
