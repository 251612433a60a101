//! Serving metrics over replayed requests, with vLLM's definitions and field names.
//!
//! * TTFT = `first_token - sent`; E2E latency (`e2el`) = `end - sent`;
//! * TPOT per request = `(E2E - TTFT) / (output_tokens - 1)` for requests with more than one
//!   output token;
//! * ITL = every gap between successive content chunks.
//!
//! benchkit adds the coordinated-omission-corrected variants measured from the *scheduled*
//! arrival (`ttft_from_scheduled = first_token - scheduled`,
//! `e2el_from_scheduled = end - scheduled`) and the client's `schedule_lag = sent - scheduled`:
//! when the client or the server falls behind, latencies from `sent` look fine while the
//! queue grows; the `_from_scheduled` ones do not hide it.
//!
//! Latency metrics cover successful requests; schedule lag covers every non-warmup request.
//! Warmup records are ignored. Memory does not grow with the number of requests: every
//! distribution is an HDR histogram (1 ns resolution, up to one hour, 3 significant digits)
//! plus exact running mean / standard deviation (Welford). Medians and percentiles are
//! nearest-rank values from the histogram (within 0.1 %), where vLLM interpolates with
//! numpy; means and standard deviations (population, like `np.std`) are exact.

pub mod interchange;
mod state;
mod writer;

pub use state::{AggregatorState, DistState};
pub use writer::{read_records, RecordWriter};

use super::{Failure, RequestRecord, TokenCountSource};
use crate::stats::Moments;
use hdrhistogram::Histogram;
use serde::de::DeserializeOwned;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

/// Largest latency the histograms resolve (larger values are clamped): one hour, in ns.
pub const MAX_TRACKED_NS: u64 = 3_600_000_000_000;

/// Percentiles listed in `percentiles_{metric}_ms` by default.
pub const DEFAULT_PERCENTILES: [f64; 5] = [50.0, 90.0, 95.0, 99.0, 99.9];

/// Errors of the metrics area.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// JSON encoding or decoding failed.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A histogram could not be created (invalid bounds).
    #[error("histogram: {0}")]
    Histogram(String),
    /// A histogram or aggregator state in interchange form that cannot be decoded, or that
    /// contradicts itself (a histogram whose count is not its moments').
    #[error("corrupt {what}: {reason}")]
    Corrupt {
        /// What was being decoded (`ttft histogram`, ...).
        what: String,
        /// Why it was refused.
        reason: String,
    },
    /// Two aggregators that cannot be merged: different objectives or histogram bounds.
    #[error("cannot merge: {what} differ ({left} vs {right})")]
    Mismatch {
        /// What differs.
        what: &'static str,
        /// This aggregator's.
        left: String,
        /// The other's.
        right: String,
    },
}

/// Service-level objectives for goodput (all optional; a request is *good* when it succeeded
/// and meets every objective given). As vLLM: TTFT ≤ `ttft_ms`, TPOT ≤ `tpot_ms`, E2E ≤
/// `e2e_ms`. ITL: the request's **largest** inter-token gap must be ≤ `itl_ms` (every token
/// within the bound — stricter than a per-request p99, and well defined for short outputs).
/// A successful request that produced no token has TTFT = E2E and TPOT/ITL = 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SloConfig {
    /// Time to first token, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    /// Time per output token, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpot_ms: Option<f64>,
    /// Largest inter-token latency of a request, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itl_ms: Option<f64>,
    /// End-to-end latency, ms (vLLM's `e2el`).
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "e2el_ms")]
    pub e2e_ms: Option<f64>,
}

/// `ttft:500,tpot:50,itl:100,e2el:2000` (milliseconds; `e2e` for `e2el`), vLLM's `--goodput`
/// spelled with `:`; any subset.
impl std::str::FromStr for SloConfig {
    type Err = crate::ParseValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &[&str] = &["ttft:MS", "tpot:MS", "itl:MS", "e2el:MS"];
        let mut slo = SloConfig::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || crate::ParseValueError::new("SLO", part, EXPECTED);
            let (k, v) = part.split_once(':').ok_or_else(bad)?;
            let v: f64 = v.trim().parse().ok().filter(|v: &f64| v.is_finite() && *v >= 0.0).ok_or_else(bad)?;
            let slot = match k.trim() {
                "ttft" => &mut slo.ttft_ms,
                "tpot" => &mut slo.tpot_ms,
                "itl" => &mut slo.itl_ms,
                "e2el" | "e2e" => &mut slo.e2e_ms,
                _ => return Err(bad()),
            };
            *slot = Some(v);
        }
        Ok(slo)
    }
}

impl SloConfig {
    /// Whether any objective is set (goodput is reported only then).
    pub fn is_set(&self) -> bool {
        self.ttft_ms.is_some() || self.tpot_ms.is_some() || self.itl_ms.is_some() || self.e2e_ms.is_some()
    }
}

/// One distribution: histogram + exact moments.
#[derive(Debug, Clone)]
struct Dist {
    hist: Histogram<u64>,
    moments: Moments,
}

impl Dist {
    fn new() -> Result<Self, MetricsError> {
        let hist =
            Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3).map_err(|e| MetricsError::Histogram(format!("{e:?}")))?;
        Ok(Self { hist, moments: Moments::default() })
    }

    fn add_ns(&mut self, ns: f64) {
        let ns = ns.max(0.0);
        self.moments.add(ns);
        self.hist.saturating_record(ns.round() as u64);
    }

    fn stats(&self, percentiles: &[f64]) -> LatencyStats {
        const MS: f64 = 1e6;
        let h = &self.hist;
        let at = |p: f64| {
            if h.is_empty() {
                0.0
            } else {
                h.median_equivalent(h.value_at_quantile(p / 100.0)) as f64 / MS
            }
        };
        let m = &self.moments;
        LatencyStats {
            count: m.count(),
            mean_ms: m.mean() / MS,
            median_ms: at(50.0),
            std_ms: m.population_stddev() / MS,
            p90_ms: at(90.0),
            p95_ms: at(95.0),
            p99_ms: at(99.0),
            max_ms: m.max() / MS,
            percentiles_ms: percentiles.iter().map(|&p| (p, at(p))).collect(),
        }
    }
}

/// Statistics of one latency metric, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    /// Samples.
    pub count: u64,
    /// Mean (exact).
    pub mean_ms: f64,
    /// Median.
    pub median_ms: f64,
    /// Population standard deviation (exact).
    pub std_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest sample (exact).
    pub max_ms: f64,
    /// `[percentile, value]` pairs for the aggregator's percentile list.
    pub percentiles_ms: Vec<(f64, f64)>,
}

/// The result of a run. Serializes with vLLM's flat field names (`mean_ttft_ms`,
/// `p99_itl_ms`, `percentiles_e2el_ms`, ...) for every metric in [`Summary::METRICS`], plus
/// benchkit's extras: `failures` (by kind), `warmup_excluded`, `output_tokens_source`,
/// `count_{metric}` and `max_{metric}_ms`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Run duration, seconds.
    pub duration: f64,
    /// Successful requests.
    pub completed: u64,
    /// Failed requests.
    pub failed: u64,
    /// Failed requests by [`Failure`] kind (`http`, `timeout`, `context_exceeded`...).
    pub failures: BTreeMap<String, u64>,
    /// Warmup records that were ignored.
    pub warmup_excluded: u64,
    /// Prompt tokens of successful requests.
    pub total_input_tokens: u64,
    /// Output tokens of successful requests.
    pub total_output_tokens: u64,
    /// Successful requests per second.
    pub request_throughput: f64,
    /// Good requests per second (only when SLOs were given).
    pub request_goodput: Option<f64>,
    /// Output tokens per second.
    pub output_throughput: f64,
    /// Input + output tokens per second.
    pub total_token_throughput: f64,
    /// Time to first token.
    pub ttft: LatencyStats,
    /// Time per output token.
    pub tpot: LatencyStats,
    /// Inter-token latency.
    pub itl: LatencyStats,
    /// End-to-end latency.
    pub e2el: LatencyStats,
    /// TTFT from the scheduled arrival.
    pub ttft_from_scheduled: LatencyStats,
    /// E2E latency from the scheduled arrival.
    pub e2el_from_scheduled: LatencyStats,
    /// `sent - scheduled` (every non-warmup request).
    pub schedule_lag: LatencyStats,
    /// Successful requests by where their output-token count came from.
    pub output_tokens_source: BTreeMap<String, u64>,
}

impl Summary {
    /// Metric names as they appear in the serialized field names.
    pub const METRICS: [&'static str; 7] =
        ["ttft", "tpot", "itl", "e2el", "ttft_from_scheduled", "e2el_from_scheduled", "schedule_lag"];

    /// The statistics of metric `name` (one of [`Summary::METRICS`]).
    pub fn metric(&self, name: &str) -> Option<&LatencyStats> {
        Some(match name {
            "ttft" => &self.ttft,
            "tpot" => &self.tpot,
            "itl" => &self.itl,
            "e2el" => &self.e2el,
            "ttft_from_scheduled" => &self.ttft_from_scheduled,
            "e2el_from_scheduled" => &self.e2el_from_scheduled,
            "schedule_lag" => &self.schedule_lag,
            _ => return None,
        })
    }

    fn metric_mut(&mut self, name: &str) -> Option<&mut LatencyStats> {
        Some(match name {
            "ttft" => &mut self.ttft,
            "tpot" => &mut self.tpot,
            "itl" => &mut self.itl,
            "e2el" => &mut self.e2el,
            "ttft_from_scheduled" => &mut self.ttft_from_scheduled,
            "e2el_from_scheduled" => &mut self.e2el_from_scheduled,
            "schedule_lag" => &mut self.schedule_lag,
            _ => return None,
        })
    }
}

impl Serialize for Summary {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("duration", &self.duration)?;
        m.serialize_entry("completed", &self.completed)?;
        m.serialize_entry("failed", &self.failed)?;
        m.serialize_entry("failures", &self.failures)?;
        m.serialize_entry("warmup_excluded", &self.warmup_excluded)?;
        m.serialize_entry("total_input_tokens", &self.total_input_tokens)?;
        m.serialize_entry("total_output_tokens", &self.total_output_tokens)?;
        m.serialize_entry("request_throughput", &self.request_throughput)?;
        if let Some(g) = self.request_goodput {
            m.serialize_entry("request_goodput", &g)?;
        }
        m.serialize_entry("output_throughput", &self.output_throughput)?;
        m.serialize_entry("total_token_throughput", &self.total_token_throughput)?;
        for name in Self::METRICS {
            let st = self.metric(name).unwrap_or(&self.ttft);
            m.serialize_entry(&format!("count_{name}"), &st.count)?;
            m.serialize_entry(&format!("mean_{name}_ms"), &st.mean_ms)?;
            m.serialize_entry(&format!("median_{name}_ms"), &st.median_ms)?;
            m.serialize_entry(&format!("std_{name}_ms"), &st.std_ms)?;
            m.serialize_entry(&format!("p90_{name}_ms"), &st.p90_ms)?;
            m.serialize_entry(&format!("p95_{name}_ms"), &st.p95_ms)?;
            m.serialize_entry(&format!("p99_{name}_ms"), &st.p99_ms)?;
            m.serialize_entry(&format!("max_{name}_ms"), &st.max_ms)?;
            let pairs: Vec<[f64; 2]> = st.percentiles_ms.iter().map(|&(p, v)| [p, v]).collect();
            m.serialize_entry(&format!("percentiles_{name}_ms"), &pairs)?;
        }
        m.serialize_entry("output_tokens_source", &self.output_tokens_source)?;
        m.end()
    }
}

impl<'de> Deserialize<'de> for Summary {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut map = BTreeMap::<String, serde_json::Value>::deserialize(d)?;
        fn take<T: DeserializeOwned + Default, E: serde::de::Error>(
            map: &mut BTreeMap<String, serde_json::Value>,
            key: &str,
        ) -> Result<T, E> {
            match map.remove(key) {
                None | Some(serde_json::Value::Null) => Ok(T::default()),
                Some(v) => serde_json::from_value(v).map_err(|e| E::custom(format!("{key}: {e}"))),
            }
        }
        let mut s = Summary {
            duration: take(&mut map, "duration")?,
            completed: take(&mut map, "completed")?,
            failed: take(&mut map, "failed")?,
            failures: take(&mut map, "failures")?,
            warmup_excluded: take(&mut map, "warmup_excluded")?,
            total_input_tokens: take(&mut map, "total_input_tokens")?,
            total_output_tokens: take(&mut map, "total_output_tokens")?,
            request_throughput: take(&mut map, "request_throughput")?,
            request_goodput: take(&mut map, "request_goodput")?,
            output_throughput: take(&mut map, "output_throughput")?,
            total_token_throughput: take(&mut map, "total_token_throughput")?,
            output_tokens_source: take(&mut map, "output_tokens_source")?,
            ..Summary::default()
        };
        for name in Self::METRICS {
            let pairs: Vec<[f64; 2]> = take(&mut map, &format!("percentiles_{name}_ms"))?;
            let st = LatencyStats {
                count: take(&mut map, &format!("count_{name}"))?,
                mean_ms: take(&mut map, &format!("mean_{name}_ms"))?,
                median_ms: take(&mut map, &format!("median_{name}_ms"))?,
                std_ms: take(&mut map, &format!("std_{name}_ms"))?,
                p90_ms: take(&mut map, &format!("p90_{name}_ms"))?,
                p95_ms: take(&mut map, &format!("p95_{name}_ms"))?,
                p99_ms: take(&mut map, &format!("p99_{name}_ms"))?,
                max_ms: take(&mut map, &format!("max_{name}_ms"))?,
                percentiles_ms: pairs.into_iter().map(|[p, v]| (p, v)).collect(),
            };
            if let Some(slot) = s.metric_mut(name) {
                *slot = st;
            }
        }
        Ok(s)
    }
}

/// Accumulates records into a [`Summary`] in constant memory (see the module docs).
#[derive(Debug, Clone)]
pub struct Aggregator {
    slo: SloConfig,
    percentiles: Vec<f64>,
    completed: u64,
    failed: u64,
    good: u64,
    warmup: u64,
    input_tokens: u64,
    output_tokens: u64,
    /// Failure kinds seen, by discriminant (the name is computed once per kind; kinds read
    /// back from a [`AggregatorState`] are known by name until a record of theirs comes).
    failures: Vec<(Option<std::mem::Discriminant<Failure>>, String, u64)>,
    sources: Vec<(TokenCountSource, u64)>,
    ttft: Dist,
    tpot: Dist,
    itl: Dist,
    e2el: Dist,
    ttft_sched: Dist,
    e2el_sched: Dist,
    lag: Dist,
    /// Earliest `sent_ns` and latest `end_ns` of every record, warmup included.
    first_sent_ns: Option<u64>,
    last_end_ns: Option<u64>,
}

fn kind_name<T: Serialize>(v: &T, tag: Option<&str>) -> String {
    let v = serde_json::to_value(v).unwrap_or_default();
    let v = match tag {
        Some(t) => v.get(t).cloned().unwrap_or_default(),
        None => v,
    };
    v.as_str().unwrap_or("unknown").to_string()
}

impl Default for Aggregator {
    fn default() -> Self {
        Self::new(SloConfig::default())
    }
}

impl Aggregator {
    /// An empty aggregator; goodput is computed when `slo` sets any objective.
    pub fn new(slo: SloConfig) -> Self {
        // Fixed, valid bounds (1 ns ..= 1 h, 3 digits): creation cannot fail.
        let dist = Dist::new().unwrap_or_else(|e| unreachable!("valid histogram bounds: {e}"));
        Self {
            slo,
            percentiles: DEFAULT_PERCENTILES.to_vec(),
            completed: 0,
            failed: 0,
            good: 0,
            warmup: 0,
            input_tokens: 0,
            output_tokens: 0,
            failures: Vec::new(),
            sources: Vec::new(),
            ttft: dist.clone(),
            tpot: dist.clone(),
            itl: dist.clone(),
            e2el: dist.clone(),
            ttft_sched: dist.clone(),
            e2el_sched: dist.clone(),
            lag: dist,
            first_sent_ns: None,
            last_end_ns: None,
        }
    }

    /// Sets the percentiles listed in `percentiles_{metric}_ms` (0..=100).
    pub fn with_percentiles(mut self, percentiles: &[f64]) -> Self {
        self.percentiles = percentiles.iter().map(|p| p.clamp(0.0, 100.0)).collect();
        self
    }

    /// The SLOs.
    pub fn slo(&self) -> &SloConfig {
        &self.slo
    }

    /// Adds one finished record (warmup records are counted as excluded and otherwise
    /// ignored).
    pub fn record(&mut self, r: &RequestRecord) {
        self.first_sent_ns = Some(self.first_sent_ns.map_or(r.sent_ns, |t| t.min(r.sent_ns)));
        self.last_end_ns = Some(self.last_end_ns.map_or(r.end_ns, |t| t.max(r.end_ns)));
        if r.warmup {
            self.warmup += 1;
            return;
        }
        self.lag.add_ns(r.sent_ns.saturating_sub(r.scheduled_ns) as f64);
        if let Some(f) = &r.failure {
            self.failed += 1;
            let d = Some(std::mem::discriminant(f));
            match self.failures.iter_mut().find(|(k, _, _)| *k == d) {
                Some((_, _, n)) => *n += 1,
                None => {
                    let name = kind_name(f, Some("kind"));
                    match self.failures.iter_mut().find(|(_, k, _)| *k == name) {
                        Some((k, _, n)) => (*k, *n) = (d, *n + 1),
                        None => self.failures.push((d, name, 1)),
                    }
                }
            }
            return;
        }
        self.completed += 1;
        self.input_tokens += u64::from(r.input_tokens);
        self.output_tokens += u64::from(r.output_tokens);
        match self.sources.iter_mut().find(|(s, _)| *s == r.output_tokens_source) {
            Some((_, n)) => *n += 1,
            None => self.sources.push((r.output_tokens_source, 1)),
        }
        let e2e = r.end_ns.saturating_sub(r.sent_ns) as f64;
        self.e2el.add_ns(e2e);
        self.e2el_sched.add_ns(r.end_ns.saturating_sub(r.scheduled_ns) as f64);
        let ttft = match r.first_token_ns {
            Some(ft) => {
                let t = ft.saturating_sub(r.sent_ns) as f64;
                self.ttft.add_ns(t);
                self.ttft_sched.add_ns(ft.saturating_sub(r.scheduled_ns) as f64);
                t
            }
            None => e2e,
        };
        let mut tpot = 0.0;
        if r.output_tokens > 1 && r.first_token_ns.is_some() {
            tpot = (e2e - ttft).max(0.0) / f64::from(r.output_tokens - 1);
            self.tpot.add_ns(tpot);
        }
        let mut max_itl = 0u64;
        for &g in &r.itl_ns {
            self.itl.add_ns(g as f64);
            max_itl = max_itl.max(g);
        }
        if self.slo.is_set() {
            let ok = |limit: Option<f64>, ns: f64| match limit {
                Some(ms) => ns <= ms * 1e6,
                None => true,
            };
            if ok(self.slo.ttft_ms, ttft)
                && ok(self.slo.tpot_ms, tpot)
                && ok(self.slo.itl_ms, max_itl as f64)
                && ok(self.slo.e2e_ms, e2e)
            {
                self.good += 1;
            }
        }
    }

    /// Successful requests so far.
    pub fn completed(&self) -> u64 {
        self.completed
    }

    /// Failed requests so far.
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// Earliest send and latest end among the records (warmup included), ns after the
    /// start; `None` before the first record.
    pub fn span_ns(&self) -> Option<(u64, u64)> {
        self.first_sent_ns.zip(self.last_end_ns)
    }

    /// The summary for a run that lasted `duration` (the aggregator can keep going: this
    /// is a snapshot).
    pub fn finish(&self, duration: Duration) -> Summary {
        let secs = duration.as_secs_f64();
        let rate = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let p = &self.percentiles;
        Summary {
            duration: secs,
            completed: self.completed,
            failed: self.failed,
            failures: self.failures.iter().map(|(_, k, n)| (k.clone(), *n)).collect(),
            warmup_excluded: self.warmup,
            total_input_tokens: self.input_tokens,
            total_output_tokens: self.output_tokens,
            request_throughput: rate(self.completed),
            request_goodput: self.slo.is_set().then(|| rate(self.good)),
            output_throughput: rate(self.output_tokens),
            total_token_throughput: rate(self.input_tokens + self.output_tokens),
            ttft: self.ttft.stats(p),
            tpot: self.tpot.stats(p),
            itl: self.itl.stats(p),
            e2el: self.e2el.stats(p),
            ttft_from_scheduled: self.ttft_sched.stats(p),
            e2el_from_scheduled: self.e2el_sched.stats(p),
            schedule_lag: self.lag.stats(p),
            output_tokens_source: self.sources.iter().map(|(s, n)| (kind_name(s, None), *n)).collect(),
        }
    }
}
