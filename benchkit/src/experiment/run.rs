//! Running an experiment: for each treatment, skip it when the store has its completed run,
//! else set up, run the command as a child process that stores its result, record what
//! happened, and tear down, always.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::file::Experiment;
use super::process::{self, Ending, GRACE};
use super::template;
use super::treatments::Treatment;
use super::ExperimentError;
use crate::commits::{tail, LOG_TAIL_LINES};
use crate::store::{Filter, Run, RunId, RunMeta, Store};
use crate::supervise::Cancel;

/// How long each teardown command may take.
const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(120);

/// Where and how an experiment runs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The `benchkit` executable each treatment's command runs as.
    pub exe: PathBuf,
    /// The store (a SQLite path or a `postgres://` URL), also passed to each command.
    pub store: String,
    /// Each treatment's logs go to `log_dir/<treatment>/` (`setup.log`, `server.log`,
    /// `run.log`, `teardown.log`).
    pub log_dir: PathBuf,
    /// Set it (Ctrl-C, [`cancel_on_signals`]) to stop: the command in progress is killed, its
    /// treatment torn down, and no other starts.
    pub cancel: Cancel,
}

/// One treatment's commands, placeholders filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreatmentPlan {
    /// The treatment.
    pub treatment: Treatment,
    /// Its runs' label.
    pub label: String,
    /// Its `{port}`.
    pub port: u16,
    /// Setup commands.
    pub setup_run: Vec<Vec<String>>,
    /// The long-lived process.
    pub spawn: Option<Vec<String>>,
    /// The URL waited for.
    pub wait_http: Option<String>,
    /// The benchkit arguments: subcommand, its arguments, factor flags, `--store`, `--label`.
    pub command: Vec<String>,
    /// Teardown commands.
    pub teardown_run: Vec<Vec<String>>,
}

/// What happened to one treatment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TreatmentOutcome {
    /// The treatment.
    pub treatment: Treatment,
    /// `ok`, `skipped` (done before), `setup_failed`, `failed` or `interrupted`.
    pub status: String,
    /// The run that records it.
    pub run_id: Option<RunId>,
    /// What went wrong, with the log's last lines.
    pub error: Option<String>,
    /// What went wrong in teardown (the outcome stands).
    pub teardown_error: Option<String>,
    /// Its logs.
    pub logs: PathBuf,
    /// Setup to teardown.
    #[serde(with = "crate::serde_duration::secs")]
    pub elapsed: Duration,
}

/// A whole experiment's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// The experiment.
    pub name: String,
    /// Its file's hash (in every label).
    pub hash: String,
    /// Each treatment started or skipped, in order.
    pub treatments: Vec<TreatmentOutcome>,
    /// Whether it was cancelled before its end.
    pub interrupted: bool,
}

impl RunSummary {
    /// The treatments that neither completed now nor before.
    pub fn failed(&self) -> usize {
        self.treatments.iter().filter(|t| !matches!(t.status.as_str(), "ok" | "skipped")).count()
    }
}

/// What an experiment reports as it goes.
#[derive(Debug)]
#[non_exhaustive]
pub enum Progress<'a> {
    /// A treatment starts (0-based `index` of `total`).
    Starting {
        /// Its position.
        index: usize,
        /// How many treatments.
        total: usize,
        /// What will run.
        plan: &'a TreatmentPlan,
    },
    /// A treatment is done (or skipped).
    Done {
        /// Its position.
        index: usize,
        /// How many treatments.
        total: usize,
        /// What happened.
        outcome: &'a TreatmentOutcome,
    },
}

/// Cancels `cancel` on SIGINT, SIGTERM and SIGHUP (instead of ending the process), so that the
/// experiment tears its treatment down first.
///
/// # Errors
/// The signal handlers could not be installed.
pub fn cancel_on_signals(cancel: &Cancel) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    let cancel = cancel.clone();
    std::thread::Builder::new().name("benchkit-experiment-signals".into()).spawn(move || {
        for sig in signals.forever() {
            eprintln!("benchkit experiment: signal {sig}: stopping after this treatment's teardown");
            cancel.cancel();
        }
    })?;
    Ok(())
}

impl Experiment {
    /// `t`'s commands with `{port}` = `port`, storing into `store`.
    pub fn plan(&self, t: &Treatment, port: u16, store: &str) -> TreatmentPlan {
        let mut vars: BTreeMap<String, String> = t.levels.iter().cloned().collect();
        vars.insert("port".into(), port.to_string());
        vars.insert("treatment".into(), t.id.clone());
        vars.insert("experiment".into(), self.name.clone());
        let r = |s: &String| template::render(s, &vars);
        let argv = |a: &Vec<String>| a.iter().map(r).collect::<Vec<_>>();
        let label = self.label(t);
        let mut args: Vec<String> = self.args.iter().map(r).collect();
        // `placement ... -- bench ...`: what follows `--` is the workload's; the run's flags go before.
        let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
        args.splice(at..at, ["--store".to_string(), store.to_string(), "--label".into(), label.clone()]);
        for f in &self.factors {
            if let (Some(flag), Some(level)) = (&f.flag, t.level(&f.name)) {
                args.extend([flag.clone(), level.to_string()]);
            }
        }
        let mut command = vec![self.command.clone()];
        command.extend(args);
        TreatmentPlan {
            treatment: t.clone(),
            label,
            port,
            setup_run: self.setup.run.iter().map(argv).collect(),
            spawn: self.setup.spawn.as_ref().map(argv),
            wait_http: self.setup.wait_http.as_ref().map(r),
            command,
            teardown_run: self.teardown.run.iter().map(argv).collect(),
        }
    }

    /// Runs every treatment not already completed in the store (see the
    /// [module](super) documentation).
    ///
    /// # Errors
    /// [`ExperimentError::Store`] when the store cannot be opened or written,
    /// [`ExperimentError::Io`] for a log directory that cannot be made. A treatment that fails
    /// is an outcome, not an error.
    pub fn run(&self, opts: &RunOptions, mut progress: impl FnMut(&Progress)) -> Result<RunSummary, ExperimentError> {
        let store = Store::open(&opts.store)?;
        let total = self.treatments.len();
        let mut summary =
            RunSummary { name: self.name.clone(), hash: self.hash.clone(), treatments: Vec::new(), interrupted: false };
        for (index, t) in self.treatments.iter().enumerate() {
            if opts.cancel.is_cancelled() {
                summary.interrupted = true;
                break;
            }
            let outcome =
                self.treatment(&store, opts, t, |plan| progress(&Progress::Starting { index, total, plan }))?;
            progress(&Progress::Done { index, total, outcome: &outcome });
            summary.interrupted |= outcome.status == "interrupted";
            summary.treatments.push(outcome);
        }
        Ok(summary)
    }

    fn treatment(
        &self,
        store: &Store,
        opts: &RunOptions,
        t: &Treatment,
        starting: impl FnOnce(&TreatmentPlan),
    ) -> Result<TreatmentOutcome, ExperimentError> {
        let start = Instant::now();
        let dir = opts.log_dir.join(&t.id);
        let label = self.label(t);
        let mut outcome = TreatmentOutcome {
            treatment: t.clone(),
            status: "skipped".into(),
            run_id: None,
            error: None,
            teardown_error: None,
            logs: dir.clone(),
            elapsed: Duration::ZERO,
        };
        let runs = labelled(store, &label)?;
        if let Some(done) = runs.iter().rev().find(|r| r.meta.status == "ok") {
            self.tag(store, done.id, t)?;
            outcome.run_id = Some(done.id);
            return Ok(outcome);
        }
        let io = |what| {
            let path = dir.clone();
            move |source| ExperimentError::Io { what, path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io("cannot create the log directory"))?;
        for f in ["setup.log", "server.log", "run.log", "teardown.log"] {
            process::fresh_log(&dir.join(f)).map_err(io("cannot create a log in"))?;
        }
        let port = process::free_port().map_err(io("no free loopback port for"))?;
        let plan = self.plan(t, port, &opts.store);
        starting(&plan);
        let last = store.runs(&Filter::all())?.last().map_or(0, |r| r.id.0);
        let mut server = None;
        let measured = match self.set_up(&plan, &dir, &mut server, &opts.cancel) {
            Err(why) if opts.cancel.is_cancelled() => Ok(("interrupted", Some(why), None)),
            Err(why) => self.record(store, &label, "setup_failed", why).map(|id| ("setup_failed", None, Some(id))),
            Ok(()) => self.measure(store, opts, &plan, &dir, last),
        };
        // Teardown runs whatever happened, a store error included.
        outcome.teardown_error = tear_down(&plan, &dir, server);
        let (status, error, run_id) = measured?;
        outcome.status = status.into();
        outcome.run_id = run_id;
        outcome.error = match (error, run_id) {
            (Some(e), _) => Some(e),
            (None, Some(id)) => labelled(store, &label)?.into_iter().find(|r| r.id == id).and_then(|r| r.meta.error),
            (None, None) => None,
        };
        outcome.elapsed = start.elapsed();
        Ok(outcome)
    }

    /// Setup commands, the spawned process, the wait for its URL; why it failed, with the log's
    /// tail.
    fn set_up(
        &self,
        plan: &TreatmentPlan,
        dir: &Path,
        server: &mut Option<Child>,
        cancel: &Cancel,
    ) -> Result<(), String> {
        let setup_log = dir.join("setup.log");
        let with_tail = |why: String, log: &Path| {
            let t = tail(log, LOG_TAIL_LINES);
            if t.is_empty() {
                why
            } else {
                format!("{why}\n{t}")
            }
        };
        for argv in &plan.setup_run {
            let ending = process::run(process::command(argv, &setup_log), self.timeout, cancel);
            if !ending.success() {
                return Err(with_tail(format!("setup: {}", ending.describe(&argv[0])), &setup_log));
            }
        }
        let server_log = dir.join("server.log");
        if let Some(argv) = &plan.spawn {
            let child = process::command(argv, &server_log).and_then(|mut c| c.spawn());
            *server = Some(child.map_err(|e| with_tail(format!("setup: cannot start {}: {e}", argv[0]), &server_log))?);
        }
        if let Some(url) = &plan.wait_http {
            process::wait_http(url, self.setup.wait_timeout, server.as_mut(), cancel)
                .map_err(|why| with_tail(format!("setup: {why}"), &server_log))?;
        }
        Ok(())
    }

    /// Runs the command; `(status, error, run)` as recorded in the store.
    fn measure(
        &self,
        store: &Store,
        opts: &RunOptions,
        plan: &TreatmentPlan,
        dir: &Path,
        last: i64,
    ) -> Result<(&'static str, Option<String>, Option<RunId>), ExperimentError> {
        let log = dir.join("run.log");
        let mut argv = vec![opts.exe.display().to_string()];
        argv.extend(plan.command.iter().cloned());
        let cmd = process::command(&argv, &log).map(|mut c| {
            // The child stores where --store says, and only there.
            c.env_remove(crate::supervise::WORKER_ENV)
                .env_remove(crate::supervise::WORKER_EXE_ENV)
                .env_remove("BENCHKIT_STORE");
            c
        });
        let ending = process::run(cmd, self.timeout, &opts.cancel);
        let run = labelled(store, &plan.label)?.into_iter().rfind(|r| r.id.0 > last);
        if let Some(r) = &run {
            self.tag(store, r.id, &plan.treatment)?;
        }
        let why = |what: String| {
            let t = tail(&log, LOG_TAIL_LINES);
            if t.is_empty() {
                what
            } else {
                format!("{what}\n{t}")
            }
        };
        let program = format!("benchkit {}", self.command);
        Ok(match (ending, run) {
            (Ending::Cancelled, r) => ("interrupted", Some(Ending::Cancelled.describe(&program)), r.map(|r| r.id)),
            (e, Some(r)) if e.success() && r.meta.status == "ok" => match unusable(store, r.id)? {
                // A run whose every record failed (a model that does not load, a server that
                // refused every request) measured nothing: it is tried again on resume.
                Some(why) => {
                    store.set_run_status(r.id, "failed", Some(&why))?;
                    ("failed", Some(why), Some(r.id))
                }
                None => ("ok", None, Some(r.id)),
            },
            (e, Some(r)) if e.success() => ("failed", None, Some(r.id)),
            (e, None) if e.success() => {
                let error = why(format!("{program} exited 0 but stored no run"));
                ("failed", None, Some(self.record(store, &plan.label, "failed", error)?))
            }
            (e, Some(r)) => {
                store.set_run_status(r.id, "failed", Some(&why(e.describe(&program))))?;
                ("failed", None, Some(r.id))
            }
            (e, None) => ("failed", None, Some(self.record(store, &plan.label, "failed", why(e.describe(&program)))?)),
        })
    }

    /// Stores a run without records: a treatment that failed before its command stored one.
    fn record(&self, store: &Store, label: &str, status: &str, error: String) -> Result<RunId, ExperimentError> {
        let mut meta = RunMeta::from_provenance(&self.command, &crate::Provenance::now()).label(Some(label.into()));
        meta.status = status.into();
        meta.error = Some(error);
        Ok(store.insert_run(&meta)?)
    }

    /// Tags a run's records with the experiment, the treatment and each factor's level.
    fn tag(&self, store: &Store, run: RunId, t: &Treatment) -> Result<(), ExperimentError> {
        let mut p = BTreeMap::from([("experiment".to_string(), self.name.clone()), ("treatment".into(), t.id.clone())]);
        p.extend(t.levels.iter().map(|(f, l)| (format!("exp.{f}"), l.clone())));
        store.add_run_params(run, &p)?;
        Ok(())
    }
}

/// Why a run measured nothing: none of its records is `ok` (or `invalid`: measured, but
/// flagged, as a saturated client's replay).
fn unusable(store: &Store, run: RunId) -> Result<Option<String>, ExperimentError> {
    let entries = store.entries(&Filter::parse(&format!("run={}", run.0))?)?;
    if entries.iter().any(|e| matches!(e.record.status.as_str(), "ok" | "invalid")) {
        return Ok(None);
    }
    let why = entries.iter().find_map(|e| e.record.error.clone()).unwrap_or_else(|| "it stored no record".into());
    Ok(Some(format!("no record completed: {why}")))
}

/// The runs labelled `label`, oldest first.
fn labelled(store: &Store, label: &str) -> Result<Vec<Run>, ExperimentError> {
    Ok(store.runs(&Filter::all())?.into_iter().filter(|r| r.meta.label.as_deref() == Some(label)).collect())
}

/// Teardown commands, then the spawned process stopped; what failed.
fn tear_down(plan: &TreatmentPlan, dir: &Path, server: Option<Child>) -> Option<String> {
    let log = dir.join("teardown.log");
    // Teardown is not cancellable: it is what a cancel waits for.
    let never = Cancel::new();
    let mut errors: Vec<String> = Vec::new();
    for argv in &plan.teardown_run {
        let ending = process::run(process::command(argv, &log), Some(TEARDOWN_TIMEOUT), &never);
        if !ending.success() {
            errors.push(format!("teardown: {}", ending.describe(&argv[0])));
        }
    }
    if let Some(mut s) = server {
        if let Ok(Some(status)) = s.try_wait() {
            errors.push(format!("the spawned process had already ended: {}", Ending::Exited(status).describe("it")));
        }
        process::stop(&mut s, GRACE);
    }
    (!errors.is_empty()).then(|| errors.join("; "))
}
