//! A sweep with its isolation chosen at run time: what the `benchkit bench` command and the
//! Python bindings run, so that neither chooses between [`Sweep`] and [`SupervisedSweep`].

use super::params::{Grid, ParamError, Point, RunConfig};
use super::record::BenchRecord;
use super::record::Status;
use super::runner::{Progress, Sweep};
use super::supervised::SupervisedSweep;
use crate::supervise::{Cancel, Isolation, TrialConfig};
use crate::telemetry::TelemetryConfig;
use crate::Backend;

/// A whole benchmark: the grid, how each test runs, and where.
#[derive(Debug, Clone, Default)]
pub struct BenchConfig {
    /// What to measure.
    pub grid: Grid,
    /// How each test runs (repetitions, warmup, seed, ...).
    pub run: RunConfig,
    /// In this process or in supervised workers.
    pub isolation: Isolation,
    /// Stops the run from outside: a worker in progress is killed, an in-process point runs to
    /// its end; every point not measured then comes as a [`Status::Cancelled`] record.
    pub cancel: Option<Cancel>,
    /// What is sampled while each point runs (see [`crate::telemetry`]): the worker from
    /// outside, or this process in-process.
    pub telemetry: TelemetryConfig,
}

impl BenchConfig {
    /// Checks every model file's GGUF header, table and tensor index (no llama.cpp load), so
    /// that a missing or corrupt model is a typed error before anything runs rather than a
    /// failed record per point.
    ///
    /// # Errors
    /// [`ModelError::InvalidFile`](crate::ModelError::InvalidFile) for the first bad file.
    pub fn check_models(&self) -> Result<(), crate::ModelError> {
        for m in &self.grid.models {
            crate::gguf::GgufFile::open(m)?;
        }
        Ok(())
    }

    /// Starts the sweep: an iterator of records, one per grid point, each produced as its point
    /// finishes; `progress` sees every event on the way.
    ///
    /// # Errors
    /// [`ParamError`] for an invalid or empty grid.
    pub fn run<'a>(&self, backend: &Backend, progress: impl FnMut(&Progress) + 'a) -> Result<BenchRun<'a>, ParamError> {
        let isolation = match (&self.isolation, &self.cancel) {
            (Isolation::Worker(t), Some(c)) => Isolation::Worker(TrialConfig { cancel: Some(c.clone()), ..t.clone() }),
            (i, _) => i.clone(),
        };
        let run = BenchRun::new(backend, self.grid.points()?, self.run.clone(), &isolation, &self.telemetry, progress);
        Ok(match &self.cancel {
            Some(c) => run.cancel_on(c.clone()),
            None => run,
        })
    }
}

/// A running sweep, in-process or supervised.
pub struct BenchRun<'a> {
    planned: Vec<BenchRecord>,
    records: Box<dyn Iterator<Item = BenchRecord> + 'a>,
}

impl<'a> BenchRun<'a> {
    /// A sweep over explicit points, sampled as `telemetry` says (in a worker's
    /// [`TrialConfig`], it replaces the one there).
    pub fn new(
        backend: &Backend,
        points: Vec<Point>,
        run: RunConfig,
        isolation: &Isolation,
        telemetry: &TelemetryConfig,
        progress: impl FnMut(&Progress) + 'a,
    ) -> Self {
        match isolation {
            Isolation::InProcess => {
                let sweep = Sweep::from_points(backend, points, run).telemetry(telemetry).on_progress(progress);
                BenchRun { planned: sweep.planned_records(), records: Box::new(sweep) }
            }
            Isolation::Worker(trial) => {
                let trial = TrialConfig { telemetry: telemetry.clone(), ..trial.clone() };
                let sweep = SupervisedSweep::from_points(points, run, trial).on_progress(progress);
                BenchRun { planned: sweep.planned_records(), records: Box::new(sweep) }
            }
        }
    }

    /// After `cancel` is set, the points not yet yielded come as [`Status::Cancelled`]
    /// records, without running (a supervised sweep also needs the flag in its
    /// [`TrialConfig::cancel`] to stop the point in progress: [`BenchConfig::cancel`] sets both).
    pub fn cancel_on(self, cancel: Cancel) -> Self {
        let BenchRun { planned, mut records } = self;
        let mut yielded = 0;
        let rest = planned.clone();
        let records = std::iter::from_fn(move || {
            let r = if cancel.is_cancelled() {
                let mut r = rest.get(yielded)?.clone();
                r.status = Status::Cancelled;
                r.error = Some("cancelled before it started".into());
                Some(r)
            } else {
                records.next()
            };
            yielded += 1;
            r
        });
        BenchRun { planned, records: Box::new(records) }
    }

    /// The records of the planned points before measurement (parameters filled, no results):
    /// markdown output chooses its columns from them.
    pub fn planned_records(&self) -> &[BenchRecord] {
        &self.planned
    }
}

impl Iterator for BenchRun<'_> {
    type Item = BenchRecord;

    fn next(&mut self) -> Option<BenchRecord> {
        self.records.next()
    }
}
