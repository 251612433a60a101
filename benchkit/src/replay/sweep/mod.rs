//! Rate sweeps: the same prepared replay (same requests, same seeds) run at several request
//! rates, one full replay per rate, giving a throughput-latency curve:
//!
//! * [`SweepPlan::Rates`]: each listed rate in turn (`--request-rate 1,2,4,8`);
//! * [`SweepPlan::Saturation`]: growing rates until the achieved throughput stops growing;
//! * [`SweepPlan::MaxRate`]: the largest rate meeting latency objectives ([`Slo`]), by
//!   bisection to a stated tolerance.
//!
//! The stop rules and the search are in [`search`]; [`curve`] prints and writes the points.
//! The workload is loaded once; each rate reschedules it with the configuration's arrival
//! process (Poisson, gamma or constant; `inf` in the configuration means Poisson), seed,
//! warmup and duration limit.

pub mod curve;
pub mod search;
mod slo;

pub use search::{MaxRate, Outcome, Saturation, SaturationConfig, SearchConfig};
pub use slo::{Objective, ObjectiveCheck, Slo, SLO_METRICS};

use super::metrics::{Aggregator, LatencyStats, SloConfig};
use super::workload::{Arrival, Limit, ScheduleConfig};
use super::{PreparedReplay, ReplayConfig, ReplayError, ReplayResult, RequestRate, RequestRecord};
use crate::{Backend, Provenance};
use serde::{Deserialize, Serialize};

/// Errors of a sweep as a whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SweepError {
    /// An objective of `--slo` is malformed.
    #[error("SLO {part:?}: {reason}")]
    Slo {
        /// The objective as given.
        part: String,
        /// What is wrong.
        reason: String,
    },
    /// The plan's parameters are invalid.
    #[error("sweep: {0}")]
    Plan(String),
    /// A replay failed (a failed request is not one: it is counted in its point).
    #[error(transparent)]
    Replay(#[from] ReplayError),
}

/// Which rates to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SweepPlan {
    /// These rates, in this order.
    Rates {
        /// The rates (`inf`: all at once).
        rates: Vec<RequestRate>,
    },
    /// Growing rates until saturation.
    Saturation(SaturationConfig),
    /// The largest rate meeting the SLOs.
    MaxRate(SearchConfig),
}

/// A sweep: the plan and the objectives each point is checked against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepConfig {
    /// The rates.
    pub plan: SweepPlan,
    /// Objectives (a max-rate search needs them; otherwise each point just reports them).
    pub slo: Option<Slo>,
}

impl SweepConfig {
    /// Checks the plan's parameters.
    ///
    /// # Errors
    /// [`SweepError::Plan`] for an empty rate list, bad saturation or search parameters, or a
    /// max-rate search without objectives.
    pub fn validate(&self) -> Result<(), SweepError> {
        match &self.plan {
            SweepPlan::Rates { rates } if rates.is_empty() => Err("no rate to run".to_string()),
            SweepPlan::Rates { .. } => Ok(()),
            SweepPlan::Saturation(c) => c.validate(),
            SweepPlan::MaxRate(_) if self.slo.as_ref().map_or(true, |s| s.objectives.is_empty()) => {
                Err("a max-rate search needs objectives (--slo)".to_string())
            }
            SweepPlan::MaxRate(c) => c.validate(),
        }
        .map_err(SweepError::Plan)
    }
}

/// The 50th and 99th percentiles of a latency, ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct P50P99 {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
}

impl From<&LatencyStats> for P50P99 {
    fn from(s: &LatencyStats) -> Self {
        P50P99 { p50_ms: s.median_ms, p99_ms: s.p99_ms }
    }
}

/// One run of the sweep: a point of the throughput-latency curve, with its full result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// Offered rate.
    pub offered: RequestRate,
    /// Successful requests per second.
    pub achieved_rps: f64,
    /// Output tokens per second.
    pub output_tps: f64,
    /// Good requests per second (with `--goodput`'s per-request objectives).
    pub goodput_rps: Option<f64>,
    /// Time to first token.
    pub ttft: P50P99,
    /// Time per output token.
    pub tpot: P50P99,
    /// Inter-token latency.
    pub itl: P50P99,
    /// End-to-end latency.
    pub e2el: P50P99,
    /// Successful requests.
    pub completed: u64,
    /// Failed requests.
    pub failed: u64,
    /// Each objective's value at this rate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objectives: Vec<ObjectiveCheck>,
    /// Whether the run met the SLOs (`None` without objectives), whatever the client's
    /// verdict on itself: that verdict is beside it, for the reader to weigh.
    pub meets_slo: Option<bool>,
    /// The client's verdict on itself: why the run does not measure the server (`None`: valid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
    /// The replay's result.
    pub result: ReplayResult,
}

impl SweepPoint {
    /// The point of `result`; `slo_summary` is the same run aggregated with the objectives'
    /// percentiles.
    pub fn new(result: ReplayResult, slo: Option<&Slo>, slo_summary: &super::metrics::Summary) -> Self {
        let s = &result.summary;
        let objectives = slo.map(|slo| slo.check(slo_summary)).unwrap_or_default();
        let invalid = result.invalid.clone();
        let meets_slo = slo.map(|_| Slo::met(&objectives, s.completed, s.failed));
        SweepPoint {
            offered: result.request_rate,
            achieved_rps: s.request_throughput,
            output_tps: s.output_throughput,
            goodput_rps: s.request_goodput,
            ttft: (&s.ttft).into(),
            tpot: (&s.tpot).into(),
            itl: (&s.itl).into(),
            e2el: (&s.e2el).into(),
            completed: s.completed,
            failed: s.failed,
            objectives,
            meets_slo,
            invalid,
            result,
        }
    }
}

/// How the sweep ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Conclusion {
    /// Every listed rate ran.
    Rates,
    /// Where throughput stopped growing.
    Saturation(Saturation),
    /// The largest rate meeting the SLOs.
    MaxRate(MaxRate),
}

/// A whole sweep: the points in the order they ran, and the conclusion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepResult {
    /// What was swept.
    pub sweep: SweepConfig,
    /// One per run, in order.
    pub points: Vec<SweepPoint>,
    /// The answer.
    pub conclusion: Conclusion,
    /// The first run's provenance, with the sweep among its settings.
    pub provenance: Provenance,
}

/// What a front end sees while a sweep runs (every method does nothing by default).
pub trait SweepObserver {
    /// The workload is loaded (before the first run).
    fn prepared(&mut self, _replay: &PreparedReplay) {}
    /// A run at `rate` starts.
    fn start(&mut self, _rate: RequestRate) {}
    /// A request of the current run finished.
    fn record(&mut self, _record: &RequestRecord) {}
    /// A run finished.
    fn point(&mut self, _point: &SweepPoint) {}
}

/// Sees nothing.
impl SweepObserver for () {}

/// `template`'s arrival process at `rate` (all at once for `inf`; Poisson when the template
/// sends all at once or replays recorded times).
pub fn arrival_at(template: &Arrival, rate: RequestRate) -> Arrival {
    match (rate, *template) {
        (RequestRate::Inf(_), _) => Arrival::AllAtOnce,
        (RequestRate::PerSecond(rate), Arrival::Constant { .. }) => Arrival::Constant { rate },
        (RequestRate::PerSecond(rate), Arrival::Gamma { burstiness, .. }) => Arrival::Gamma { rate, burstiness },
        (RequestRate::PerSecond(rate), _) => Arrival::Poisson { rate },
    }
}

/// Runs `sweep` over `config`'s replay: the workload is prepared once, then each rate is one
/// full replay with `config.schedule`'s arrival process at that rate.
///
/// # Errors
/// [`SweepError::Plan`] for invalid parameters; [`SweepError::Replay`] when the workload
/// cannot be prepared or a run fails as a whole (the points before it reached `observer`).
pub fn run_sweep(
    config: ReplayConfig,
    sweep: &SweepConfig,
    backend: &Backend,
    observer: &mut impl SweepObserver,
) -> Result<SweepResult, SweepError> {
    sweep.validate()?;
    let template = config.schedule;
    if matches!(template.arrival, Arrival::Recorded { .. }) {
        return Err(SweepError::Plan(
            "a trace's recorded arrival times are not swept by rate: scale them instead".to_string(),
        ));
    }
    if config.shard.is_some() {
        // Every rate would overwrite the same shard file; sweep each shard's rates as separate runs.
        return Err(SweepError::Plan(
            "--shard runs one schedule: run a sharded replay per rate instead of a sweep".to_string(),
        ));
    }
    // Scheduled all at once without a limit, every request is kept for the real schedules.
    let unscheduled = ScheduleConfig { arrival: Arrival::AllAtOnce, limit: Limit::default(), ..template };
    let base = ReplayConfig { schedule: unscheduled, ..config }.prepare(backend)?;
    observer.prepared(&base);
    let slo = sweep.slo.as_ref();
    let percentiles = slo.map(Slo::percentiles).unwrap_or_default();
    let mut points: Vec<SweepPoint> = Vec::new();
    let mut probe = |rate: RequestRate| -> Result<Outcome, SweepError> {
        let schedule = ScheduleConfig { arrival: arrival_at(&template.arrival, rate), ..template };
        let run = base.rescheduled(schedule)?;
        observer.start(rate);
        let mut by_slo = Aggregator::new(SloConfig::default()).with_percentiles(&percentiles);
        let result = run.run(backend, |r| {
            by_slo.record(r);
            observer.record(r);
        })?;
        let point = SweepPoint::new(result, slo, &by_slo.finish(std::time::Duration::ZERO));
        observer.point(&point);
        let outcome = Outcome { achieved: point.achieved_rps, meets_slo: point.meets_slo };
        points.push(point);
        Ok(outcome)
    };
    let conclusion = match &sweep.plan {
        SweepPlan::Rates { rates } => {
            for &rate in rates {
                probe(rate)?;
            }
            Conclusion::Rates
        }
        SweepPlan::Saturation(c) => Conclusion::Saturation(search::saturate(c, |r| probe(RequestRate::PerSecond(r)))?),
        SweepPlan::MaxRate(c) => Conclusion::MaxRate(search::max_rate(c, |r| probe(RequestRate::PerSecond(r)))?),
    };
    let provenance =
        points.first().map_or_else(Provenance::now, |p| p.result.provenance.clone()).setting("sweep", sweep);
    Ok(SweepResult { sweep: sweep.clone(), points, conclusion, provenance })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rate_keeps_the_templates_arrival_process() {
        let r = RequestRate::PerSecond(3.0);
        assert_eq!(arrival_at(&Arrival::Constant { rate: 1.0 }, r), Arrival::Constant { rate: 3.0 });
        let gamma = Arrival::Gamma { rate: 1.0, burstiness: 0.5 };
        assert_eq!(arrival_at(&gamma, r), Arrival::Gamma { rate: 3.0, burstiness: 0.5 });
        assert_eq!(arrival_at(&Arrival::AllAtOnce, r), Arrival::Poisson { rate: 3.0 });
        assert_eq!(arrival_at(&gamma, RequestRate::INF), Arrival::AllAtOnce);
    }

    #[test]
    fn plans_are_validated_before_anything_runs() {
        let check = |plan: SweepPlan, slo: Option<&str>| {
            SweepConfig { plan, slo: slo.map(|s| s.parse().unwrap()) }.validate().map_err(|e| e.to_string())
        };
        assert!(check(SweepPlan::Rates { rates: vec![] }, None).unwrap_err().contains("no rate"));
        assert!(check(SweepPlan::MaxRate(SearchConfig::default()), None).unwrap_err().contains("--slo"));
        assert!(check(SweepPlan::MaxRate(SearchConfig::default()), Some("ttft:p99:1s")).is_ok());
        let bad = SaturationConfig { start: 0.0, ..SaturationConfig::default() };
        assert!(check(SweepPlan::Saturation(bad), None).unwrap_err().contains("start"));
        let v = serde_json::to_value(SweepPlan::MaxRate(SearchConfig::default())).unwrap();
        assert_eq!((v["kind"].as_str(), v["tolerance"].as_f64()), (Some("max_rate"), Some(0.1)));
    }

    #[cfg(all(feature = "cli", feature = "replay-http"))]
    #[test]
    fn a_sharded_replay_is_not_swept() {
        let dir = std::env::temp_dir().join(format!("benchkit-sweep-shard-{}", std::process::id()));
        let flags = format!(
            "--target http --base-url http://127.0.0.1:9 -m missing.gguf --dataset synthetic --request-rate 1,2 \
             --shard 0/2 --shard-dir {}",
            dir.display()
        );
        let argv = std::iter::once("benchkit replay".to_string()).chain(flags.split_whitespace().map(String::from));
        let args = crate::cli::replay::ReplayArgs::try_parse_argv(argv).unwrap();
        let config = args.config(|| unreachable!("an http target names its tokenizer")).unwrap();
        let sweep = SweepConfig { plan: SweepPlan::Rates { rates: vec![RequestRate::PerSecond(1.0)] }, slo: None };
        struct Quiet;
        impl SweepObserver for Quiet {}
        let backend = Backend::init().unwrap();
        // Refused before the (missing) tokenizer is loaded or anything is sent.
        let e = run_sweep(config, &sweep, &backend, &mut Quiet).unwrap_err().to_string();
        assert!(e.contains("--shard"), "{e}");
    }
}
