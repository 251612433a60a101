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

/// What each trial runs: the workload whose process is placed. It must run in supervised
/// workers (its isolation's worker program and timeout are used), which is where placement
/// applies.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Workload {
    /// A pp/tg grid; one sample per test and trial: its mean t/s.
    Bench(BenchConfig),
    /// A perplexity or KL run; the sample: evaluated tokens per second.
    #[cfg(feature = "perplexity")]
    Perplexity {
        /// The run.
        job: crate::perplexity::PerplexityJob,
        /// Its workers.
        isolation: Isolation,
    },
    /// An in-process replay; the samples: output tokens and requests per second.
    #[cfg(feature = "replay")]
    Replay(crate::replay::ReplayConfig),
    /// An HTTP replay against a server the harness starts for each trial, placed and
    /// observed: the server is the process the arm applies to, the client stays unplaced.
    /// [`PORT_PLACEHOLDER`](super::PORT_PLACEHOLDER) in the server's command and the replay's
    /// base URL becomes the trial's port. The samples: output tokens and requests per second.
    #[cfg(feature = "replay-http")]
    Served {
        /// The server.
        server: super::ServerSpec,
        /// The replay, its target HTTP.
        replay: crate::replay::ReplayConfig,
    },
}

/// Samples by metric, and why the workload failed, one sentence each.
type Outcome = (std::collections::BTreeMap<String, f64>, Vec<String>);

impl Workload {
    /// The supervision of each trial (for a served workload, of nothing: only its probe is
    /// used).
    fn trial_config(&self) -> Result<TrialConfig, PlacementError> {
        let isolation = match self {
            Workload::Bench(b) => &b.isolation,
            #[cfg(feature = "perplexity")]
            Workload::Perplexity { isolation, .. } => isolation,
            #[cfg(feature = "replay")]
            Workload::Replay(r) => {
                if !matches!(r.target, crate::replay::TargetConfig::Inproc(_)) {
                    return Err(PlacementError::Workload(
                        "an HTTP replay against a server the harness did not start places nothing: give the server's command (--server) or replay --target inproc".into(),
                    ));
                }
                &r.isolation
            }
            #[cfg(feature = "replay-http")]
            Workload::Served { .. } => return Ok(TrialConfig::default()),
        };
        match isolation {
            Isolation::Worker(t) => Ok(t.clone()),
            Isolation::InProcess => Err(PlacementError::Workload(
                "placement applies to worker processes: the workload cannot run in-process".into(),
            )),
        }
    }

    /// The model file, whose mapped pages are counted apart.
    fn model(&self) -> Option<PathBuf> {
        match self {
            Workload::Bench(b) => b.grid.models.first().cloned(),
            #[cfg(feature = "perplexity")]
            Workload::Perplexity { job, .. } => Some(job.model.clone()),
            #[cfg(feature = "replay")]
            Workload::Replay(r) => match &r.target {
                crate::replay::TargetConfig::Inproc(c) => Some(c.model.clone()),
                #[allow(unreachable_patterns)]
                _ => None,
            },
            #[cfg(feature = "replay-http")]
            Workload::Served { server, replay } => server.model.clone().or_else(|| replay.tokenizer.clone()),
        }
    }

    /// The unit of every sample, higher being better; empty when the metrics' names carry
    /// theirs (a replay's `output tok/s` and `req/s`).
    pub fn unit(&self) -> &'static str {
        match self {
            #[cfg(feature = "replay")]
            Workload::Replay(_) => "",
            #[cfg(feature = "replay-http")]
            Workload::Served { .. } => "",
            _ => "t/s",
        }
    }

    fn settings(&self, points: &[Point]) -> serde_json::Value {
        match self {
            Workload::Bench(b) => serde_json::json!({ "bench": { "points": points, "run": b.run } }),
            #[cfg(feature = "perplexity")]
            Workload::Perplexity { job, .. } => serde_json::json!({ "perplexity": job }),
            #[cfg(feature = "replay")]
            Workload::Replay(r) => serde_json::json!({ "replay": {
                "target": match &r.target {
                    crate::replay::TargetConfig::Inproc(c) => serde_json::to_value(c).unwrap_or_default(),
                    #[allow(unreachable_patterns)]
                    _ => serde_json::Value::Null,
                },
                "workload": format!("{:?}", r.workload),
                "schedule": format!("{:?}", r.schedule),
            }}),
            #[cfg(feature = "replay-http")]
            Workload::Served { server, replay } => serde_json::json!({ "served": {
                "server": server,
                "target": match &replay.target {
                    crate::replay::TargetConfig::Http(h) => serde_json::to_value(h).unwrap_or_default(),
                    #[allow(unreachable_patterns)]
                    _ => serde_json::Value::Null,
                },
                "workload": format!("{:?}", replay.workload),
                "schedule": format!("{:?}", replay.schedule),
            }}),
        }
    }

    /// The metrics every trial yields, whatever happens to it (a bench grid's come from its
    /// records).
    fn metrics(&self) -> &'static [&'static str] {
        match self {
            #[cfg(feature = "replay")]
            Workload::Replay(_) => &["output tok/s", "req/s"],
            #[cfg(feature = "replay-http")]
            Workload::Served { .. } => &["output tok/s", "req/s"],
            _ => &[],
        }
    }

    /// Changes the supervision of the workload's workers (the worker program, a timeout);
    /// a served workload has none.
    pub fn supervise_with(&mut self, f: impl FnOnce(&mut TrialConfig)) {
        let isolation = match self {
            Workload::Bench(b) => &mut b.isolation,
            #[cfg(feature = "perplexity")]
            Workload::Perplexity { isolation, .. } => isolation,
            #[cfg(feature = "replay")]
            Workload::Replay(r) => &mut r.isolation,
            #[cfg(feature = "replay-http")]
            Workload::Served { .. } => return,
        };
        if let Isolation::Worker(t) = isolation {
            f(t);
        }
    }

    /// What runs the trials, for the provenance.
    fn isolation_name(&self) -> &'static str {
        match self {
            #[cfg(feature = "replay-http")]
            Workload::Served { .. } => "server",
            _ => "worker",
        }
    }

    /// Runs once under `config` (which carries the placement), the model read without mmap
    /// when a memory policy is asked for.
    fn run(&self, backend: &Backend, points: &[Point], config: TrialConfig, req: &Requested) -> Outcome {
        let mut samples = std::collections::BTreeMap::new();
        let mut failed = Vec::new();
        #[cfg(feature = "replay-http")]
        if let Workload::Served { server, replay } = self {
            match config.placement.as_ref() {
                Some(probe) => served(backend, server, replay, probe, req, &mut samples, &mut failed),
                None => failed.push("served: no placement probe".into()),
            }
            return (samples, failed);
        }
        let isolation = Isolation::Worker(config);
        match self {
            Workload::Bench(b) => {
                let run =
                    BenchRun::new(backend, placed_points(points, req), b.run.clone(), &isolation, &b.telemetry, |_| {});
                let labels = metric_labels(run.planned_records());
                for (i, record) in run.enumerate() {
                    if record.status.is_ok() {
                        samples.insert(labels[i].clone(), record.avg_ts);
                    } else {
                        let error = record.error.unwrap_or_default();
                        failed.push(format!("{}: {}: {error}", record.test, record.status.as_str()));
                    }
                }
            }
            #[cfg(feature = "perplexity")]
            Workload::Perplexity { job, .. } => {
                let mut job = job.clone();
                if req.mem.is_some() {
                    job.model_params.load_mode = LoadMode::None;
                }
                match job.execute(backend, &isolation, |_| {}) {
                    Ok(crate::perplexity::PerplexityOutput::Perplexity(r)) => {
                        samples.insert("perplexity".into(), r.timings.tokens_per_s);
                    }
                    Ok(crate::perplexity::PerplexityOutput::KlDivergence(r)) => {
                        samples.insert("kl-divergence".into(), r.timings.tokens_per_s);
                    }
                    Err(e) => failed.push(format!("perplexity: {e}")),
                }
            }
            #[cfg(feature = "replay")]
            Workload::Replay(r) => {
                let mut r = r.clone();
                #[allow(irrefutable_let_patterns)] // without replay-http, Inproc is the only target
                if let crate::replay::TargetConfig::Inproc(c) = &mut r.target {
                    if req.mem.is_some() {
                        c.model_params.load_mode = LoadMode::None;
                    }
                    if let (Some(cpus), Some(tp)) = (&req.cpus, c.threadpool.as_mut()) {
                        let cpus: Vec<usize> = cpus.iter().map(|&c| c as usize).collect();
                        tp.cpu_mask = Some(crate::CpuMask::from_cpus(&cpus));
                        tp.strict_cpu = req.strict;
                    }
                }
                r.isolation = isolation;
                replay_samples(r.run(backend, |_| {}), &mut samples, &mut failed);
            }
            #[cfg(feature = "replay-http")]
            Workload::Served { .. } => unreachable!("served workloads return above"),
        }
        (samples, failed)
    }
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
    /// Stops the comparison from outside: the trial in progress is killed and invalid, no
    /// other starts, and the report covers the trials that ran.
    pub cancel: Option<crate::supervise::Cancel>,
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
            cancel: None,
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
        let trial_config = self.workload.trial_config()?;
        let trial_config = &trial_config;
        let points = match &self.workload {
            Workload::Bench(bench) => {
                let points = bench.grid.points()?;
                check_bench(bench, &points, &self.arms)?;
                points
            }
            #[allow(unreachable_patterns)]
            _ => {
                check_other(&self.workload, &self.arms)?;
                Vec::new()
            }
        };
        let preflights: Vec<Option<String>> =
            self.arms.iter().map(|a| a.scheduler.as_ref().and_then(|s| preflight(s, &self.scx).err())).collect();
        let provenance = Provenance::now()
            .seed("placement_order", self.seed)
            .setting("arms", &self.arms)
            .setting("rounds", &self.rounds)
            .setting("baseline", &self.arms[baseline].name)
            .setting("workload", &self.workload.settings(&points))
            .setting("isolation", &self.workload.isolation_name())
            .setting("trial_timeout_s", &trial_config.timeout.map(|t| t.as_secs_f64()))
            .setting("sched_ext_sysfs", &self.scx.root());
        let mut trials = Vec::new();
        let order = self.order();
        let names = order.iter().map(|&(a, r)| format!("{}#{}", self.arms[a].name, r + 1)).collect();
        let cancelled = || self.cancel.as_ref().is_some_and(crate::supervise::Cancel::is_cancelled);
        let trial_config = &TrialConfig { cancel: self.cancel.clone(), ..trial_config.clone() };
        for (position, &(a, round)) in order.iter().enumerate() {
            if cancelled() {
                break;
            }
            let arm = &self.arms[a];
            let mut t = TrialResult::new(arm, round, position, &requested[a]);
            if let Some(why) = &preflights[a] {
                t.sched_ext_before = Some(self.scx.snapshot());
                t.invalid(why.clone());
            } else {
                self.run_trial(backend, &points, trial_config, arm, &requested[a], &mut t);
            }
            on_trial(&t);
            trials.push(t);
        }
        let provenance = match &self.workload {
            Workload::Bench(bench) => provenance.seed("prompt_tokens", bench.run.seed),
            #[allow(unreachable_patterns)]
            _ => provenance,
        };
        Ok(summarise(
            provenance,
            &self.arms,
            &requested,
            baseline,
            self.rounds,
            self.seed,
            names,
            trials,
            self.workload.unit(),
            self.workload.metrics(),
        ))
    }

    fn run_trial(
        &self,
        backend: &Backend,
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
        let probe = Probe::new(requested.clone(), self.workload.model());
        let config = TrialConfig { placement: Some(probe.clone()), ..trial_config.clone() };
        let (samples, failed) = self.workload.run(backend, points, config, requested);
        t.samples = samples;
        for why in failed {
            t.invalid(why);
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

/// Refuses a perplexity or replay workload whose own settings would override an arm.
#[allow(dead_code)]
fn check_other(workload: &Workload, arms: &[Arm]) -> Result<(), PlacementError> {
    #[cfg(feature = "replay")]
    if let Workload::Replay(r) = workload {
        #[allow(irrefutable_let_patterns)] // without replay-http, Inproc is the only target
        if let crate::replay::TargetConfig::Inproc(c) = &r.target {
            let pool = c.threadpool.as_ref();
            if arms.iter().any(|a| a.placement.cpus.is_some()) && pool.is_some_and(|p| p.cpu_mask.is_some()) {
                return Err(PlacementError::Workload(
                    "the replay's threadpool has its own CPU mask while an arm sets cpus=: give the CPUs in the arm"
                        .into(),
                ));
            }
            if arms.iter().any(|a| a.placement.strict) && pool.is_none() {
                return Err(PlacementError::Workload(
                    "strict=1 pins llama.cpp's threadpool, and this replay's engine has none: leave strict out".into(),
                ));
            }
        }
    }
    #[cfg(feature = "replay-http")]
    if let Workload::Served { server, replay } = workload {
        if server.command.is_empty() {
            return Err(PlacementError::Workload("the server's command is empty".into()));
        }
        match &replay.target {
            crate::replay::TargetConfig::Http(h) if h.base_url.starts_with("http://") => {}
            _ => {
                return Err(PlacementError::Workload(
                    "a served workload replays over plain HTTP to the server it starts: --target http --base-url http://127.0.0.1:{port}".into(),
                ))
            }
        }
        if arms.iter().any(|a| a.placement.strict) {
            return Err(PlacementError::Workload(
                "strict=1 pins llama.cpp's threadpool in-process; a server takes its own flags (llama-server -C, --cpu-strict): leave strict out".into(),
            ));
        }
    }
    #[cfg(feature = "perplexity")]
    if matches!(workload, Workload::Perplexity { .. }) && arms.iter().any(|a| a.placement.strict) {
        return Err(PlacementError::Workload(
            "strict=1 pins llama.cpp's threadpool, which perplexity runs create per decode: leave strict out".into(),
        ));
    }
    let _ = (workload, arms);
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

/// A replay's samples: output tokens and requests per second; a replay in which a request
/// failed, or none completed, does not count.
#[cfg(feature = "replay")]
fn replay_samples(
    result: Result<crate::replay::ReplayResult, crate::replay::ReplayError>,
    samples: &mut std::collections::BTreeMap<String, f64>,
    failed: &mut Vec<String>,
) {
    match result {
        Ok(res) if res.summary.failed > 0 => failed.push(format!(
            "replay: {} of {} requests failed ({:?})",
            res.summary.failed,
            res.summary.failed + res.summary.completed,
            res.summary.failures
        )),
        Ok(res) if res.summary.completed > 0 => {
            samples.insert("output tok/s".into(), res.summary.output_throughput);
            samples.insert("req/s".into(), res.summary.request_throughput);
        }
        Ok(_) => failed.push("replay: no request completed".into()),
        Err(e) => failed.push(format!("replay: {e}")),
    }
}

/// Starts the server placed, replays against it, observes it once its first request is done
/// and again at the end, and stops it.
#[cfg(feature = "replay-http")]
fn served(
    backend: &Backend,
    server: &super::ServerSpec,
    replay: &crate::replay::ReplayConfig,
    probe: &Probe,
    req: &Requested,
    samples: &mut std::collections::BTreeMap<String, f64>,
    failed: &mut Vec<String>,
) {
    let mut running = match super::served::RunningServer::start(server, probe, req) {
        Ok(r) => r,
        Err(why) => return failed.push(why),
    };
    let mut r = replay.clone();
    if let crate::replay::TargetConfig::Http(h) = &mut r.target {
        h.base_url = h.base_url.replace(super::PORT_PLACEHOLDER, &running.port().to_string());
    }
    let pid = running.pid();
    let mut seen = false;
    let result = r.run(backend, |_| {
        if !seen {
            probe.observe_now(pid, 0);
            seen = true;
        }
    });
    replay_samples(result, samples, failed);
    match running.gone() {
        Some(why) => failed.push(why),
        None => probe.observe_now(pid, 1),
    }
    running.stop();
}
