//! A sweep with its isolation chosen at run time: what the `benchkit bench` command and the
//! Python bindings run, so that neither chooses between [`Sweep`] and [`SupervisedSweep`].

use super::params::{Grid, ParamError, Point, RunConfig};
use super::record::BenchRecord;
use super::runner::{Progress, Sweep};
use super::supervised::SupervisedSweep;
use crate::supervise::Isolation;
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
}

impl BenchConfig {
    /// Starts the sweep: an iterator of records, one per grid point, each produced as its point
    /// finishes; `progress` sees every event on the way.
    ///
    /// # Errors
    /// [`ParamError`] for an invalid or empty grid.
    pub fn run<'a>(&self, backend: &Backend, progress: impl FnMut(&Progress) + 'a) -> Result<BenchRun<'a>, ParamError> {
        Ok(BenchRun::new(backend, self.grid.points()?, self.run.clone(), &self.isolation, progress))
    }
}

/// A running sweep, in-process or supervised.
pub struct BenchRun<'a> {
    planned: Vec<BenchRecord>,
    records: Box<dyn Iterator<Item = BenchRecord> + 'a>,
}

impl<'a> BenchRun<'a> {
    /// A sweep over explicit points.
    pub fn new(
        backend: &Backend,
        points: Vec<Point>,
        run: RunConfig,
        isolation: &Isolation,
        progress: impl FnMut(&Progress) + 'a,
    ) -> Self {
        match isolation {
            Isolation::InProcess => {
                let sweep = Sweep::from_points(backend, points, run).on_progress(progress);
                BenchRun { planned: sweep.planned_records(), records: Box::new(sweep) }
            }
            Isolation::Worker(trial) => {
                let sweep = SupervisedSweep::from_points(points, run, trial.clone()).on_progress(progress);
                BenchRun { planned: sweep.planned_records(), records: Box::new(sweep) }
            }
        }
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
