//! Sweeps whose points run in supervised worker processes: a crash is a record.

use super::params::{Grid, ParamError, Point, RunConfig};
use super::record::{BenchRecord, Status};
use super::runner::{base_provenance, new_record, point_provenance, Progress, ProgressFn, Sweep};
use crate::supervise::{CrashReport, Emitter, Ending, Event, Job, Phase, Trial, TrialConfig, WorkerMsg};
use crate::{Backend, Provenance};
use std::collections::VecDeque;

/// A sweep like [`Sweep`] whose points run in worker processes (see [`crate::supervise`]).
///
/// Consecutive points that share a model and its parameters run in one worker, which loads the
/// model once, as llama-bench does. A worker that dies or runs past the per-trial timeout
/// yields a record with status [`Status::Crashed`] or [`Status::Timeout`] and its
/// [`CrashReport`]; a fresh worker takes the points after it. Records arrive as each point
/// finishes.
///
/// ```no_run
/// use benchkit::bench::{Grid, RunConfig, SupervisedSweep};
/// use benchkit::supervise::TrialConfig;
/// fn main() {
///     benchkit::supervise::worker_entry(); // this executable is also the worker
///     let grid = Grid::new("model.gguf");
///     let opts = TrialConfig::default().timeout(std::time::Duration::from_secs(600));
///     for r in SupervisedSweep::new(&grid, RunConfig::default(), opts).unwrap() {
///         println!("{} {} {:.2} t/s", r.test, r.status.as_str(), r.avg_ts);
///     }
/// }
/// ```
pub struct SupervisedSweep<'a> {
    points: Vec<Point>,
    settings: RunConfig,
    opts: TrialConfig,
    /// The first point not yet reported.
    next: usize,
    /// The running worker and the end (exclusive) of its points.
    worker: Option<(Trial, usize)>,
    ready: VecDeque<BenchRecord>,
    progress: Option<ProgressFn<'a>>,
    base: Provenance,
}

impl<'a> SupervisedSweep<'a> {
    /// Plans a supervised sweep over `grid`.
    ///
    /// # Errors
    /// [`ParamError`] for an invalid or empty grid.
    pub fn new(grid: &Grid, settings: RunConfig, opts: TrialConfig) -> Result<Self, ParamError> {
        Ok(Self::from_points(grid.points()?, settings, opts))
    }

    /// A supervised sweep over explicit points.
    pub fn from_points(points: Vec<Point>, settings: RunConfig, opts: TrialConfig) -> Self {
        let base = base_provenance(&settings)
            .setting("isolation", &"worker")
            .setting("trial_timeout_s", &opts.timeout.map(|t| t.as_secs_f64()));
        SupervisedSweep { points, settings, opts, next: 0, worker: None, ready: VecDeque::new(), progress: None, base }
    }

    /// Calls `f` on progress events, including [`Progress::Worker`] with each worker's PID.
    pub fn on_progress(mut self, f: impl FnMut(&Progress) + 'a) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// Records of the planned points before measurement.
    pub fn planned_records(&self) -> Vec<BenchRecord> {
        self.points.iter().map(|p| self.record(p)).collect()
    }

    /// The planned points.
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    fn record(&self, point: &Point) -> BenchRecord {
        new_record(point, &self.settings, &self.base)
    }

    fn emit(&mut self, p: Progress) {
        if let Some(f) = self.progress.as_mut() {
            f(&p);
        }
    }

    /// End (exclusive) of the run of points from `start` that share its model.
    fn group_end(&self, start: usize) -> usize {
        let first = &self.points[start];
        let same = |p: &Point| p.model == first.model && p.model_params == first.model_params;
        start + self.points[start..].iter().take_while(|p| same(p)).count()
    }

    fn start_worker(&mut self) {
        let end = self.group_end(self.next);
        let job = Job::Bench {
            points: (self.next..end).map(|i| (i, self.points[i].clone())).collect(),
            total: self.points.len(),
            settings: self.settings.clone(),
        };
        match Trial::spawn(&job, &self.opts) {
            Ok(trial) => {
                self.emit(Progress::Worker { pid: trial.pid() });
                self.worker = Some((trial, end));
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start a bench worker");
                for i in self.next..end {
                    let mut r = self.record(&self.points[i]);
                    r.status = Status::Failed;
                    r.error = Some(e.to_string());
                    self.ready.push_back(r);
                }
                self.next = end;
            }
        }
    }

    fn ended(
        &mut self,
        index: usize,
        status: Status,
        error: Option<String>,
        report: CrashReport,
        telemetry: crate::telemetry::Telemetry,
    ) -> BenchRecord {
        let mut r = self.record(&self.points[index]);
        r.telemetry = telemetry;
        r.status = status;
        let what = report.describe();
        tracing::warn!(test = %r.test, model = %r.model_filename, "{what}");
        r.error = Some(match error {
            Some(e) => format!("{what}: {e}"),
            None => what,
        });
        r.crash = Some(report);
        self.next = index + 1;
        r
    }
}

impl Iterator for SupervisedSweep<'_> {
    type Item = BenchRecord;

    fn next(&mut self) -> Option<BenchRecord> {
        loop {
            if let Some(r) = self.ready.pop_front() {
                return Some(r);
            }
            let Some((trial, end)) = self.worker.as_mut() else {
                if self.next >= self.points.len() {
                    return None;
                }
                if self.opts.cancel.as_ref().is_some_and(crate::supervise::Cancel::is_cancelled) {
                    // Cancelled: what is left is not run, and says so.
                    let mut r = self.record(&self.points[self.next]);
                    r.status = Status::Cancelled;
                    r.error = Some("cancelled before it started".into());
                    self.next += 1;
                    return Some(r);
                }
                self.start_worker();
                continue;
            };
            let end = *end;
            match trial.next_event() {
                Event::Phase { index, phase, unix_ns } => {
                    if phase == Phase::Start {
                        let (total, test) = (self.points.len(), self.points[index].test.name());
                        self.emit(Progress::Start { index, total, test });
                    }
                    if let Phase::Repetition { rep, of } = phase {
                        if rep > 1 {
                            self.emit(Progress::Repetition { index, rep: rep - 1, of });
                        }
                    }
                    self.emit(Progress::Phase { index, phase, unix_ns });
                }
                Event::Progress { .. } => {}
                Event::Output { index, value, telemetry } => {
                    self.next = index + 1;
                    let mut record = match serde_json::from_value::<BenchRecord>(value) {
                        Ok(mut r) => {
                            // The worker started its own sweep; the record is this one's.
                            let p = point_provenance(&self.base, &self.points[index]);
                            (r.provenance.started_at, r.provenance.settings) = (p.started_at, p.settings);
                            if r.status.is_ok() {
                                self.emit(Progress::Repetition { index, rep: r.repetitions, of: r.repetitions });
                            }
                            r
                        }
                        Err(e) => {
                            let mut r = self.record(&self.points[index]);
                            r.status = Status::Failed;
                            r.error = Some(format!("unreadable record from the worker: {e}"));
                            r
                        }
                    };
                    record.attach_telemetry(*telemetry);
                    return Some(record);
                }
                Event::End(ending) => {
                    let (trial, _) = self.worker.take().expect("a worker is running");
                    // What was sampled of the point the worker was in, for its record.
                    let sampled = |i: usize| trial.take_telemetry(i);
                    match ending {
                        Ending::TimedOut { index, report } => {
                            return Some(self.ended(index, Status::Timeout, None, report, sampled(index)))
                        }
                        Ending::Cancelled { index, report } => {
                            let i = index.unwrap_or(self.next);
                            if i < end {
                                let t = sampled(i);
                                return Some(self.ended(i, Status::Cancelled, Some("cancelled".into()), report, t));
                            }
                        }
                        Ending::Crashed { index, error, report } => {
                            // Between points (or before the first), the next point is the one lost.
                            match index.or((self.next < end).then_some(self.next)) {
                                Some(i) => return Some(self.ended(i, Status::Crashed, error, report, sampled(i))),
                                None => tracing::warn!("a worker died after its last point: {}", report.describe()),
                            }
                        }
                        Ending::Done => {
                            // A worker that finished without reporting some of its points.
                            for i in self.next..end {
                                let mut r = self.record(&self.points[i]);
                                r.status = Status::Failed;
                                r.error = Some("the worker finished without measuring this point".into());
                                self.ready.push_back(r);
                            }
                            self.next = end;
                        }
                    }
                }
            }
        }
    }
}

/// The worker side of [`Job::Bench`]: measures the points in-process and reports each phase
/// and record.
pub(crate) fn run_job(
    points: Vec<(usize, Point)>,
    total: usize,
    settings: RunConfig,
    emit: &Emitter,
) -> Result<(), String> {
    let backend = Backend::init().map_err(|e| e.to_string())?;
    backend.init_numa(settings.numa);
    let (indices, points): (Vec<usize>, Vec<Point>) = points.into_iter().unzip();
    let sweep = Sweep::from_points(&backend, points, settings).numbered(indices.clone(), total).on_progress(|p| {
        if let Progress::Phase { index, phase, unix_ns } = p {
            emit.send(&WorkerMsg::Phase { index: *index, phase: *phase, unix_ns: *unix_ns });
        }
    });
    for (index, record) in indices.into_iter().zip(sweep) {
        emit.output(index, &record);
    }
    Ok(())
}
