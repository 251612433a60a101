//! An [`Aggregator`]'s whole state as data, and the merge of two aggregators: what lets the
//! shards of one replay, run in separate processes or on separate machines, be combined into
//! the result one process would have computed. Counters add; exact moments merge pairwise
//! ([`Moments::merge`]); histograms add bucket by bucket, so the merged percentiles are those
//! of one histogram that recorded every value.

use super::{interchange, Aggregator, Dist, MetricsError, SloConfig, MAX_TRACKED_NS};
use crate::replay::TokenCountSource;
use crate::stats::Moments;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One distribution: exact moments and the histogram in HdrHistogram's interchange encoding
/// (base64 of V2 + DEFLATE, see [`interchange`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistState {
    /// Count, sum, mean, squared deviations, extremes (ns).
    pub moments: Moments,
    /// The histogram (ns, 1 ns ..= 1 h, 3 significant digits).
    pub histogram: String,
}

/// Everything an [`Aggregator`] holds. Times are ns after the run's start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregatorState {
    /// Objectives for goodput.
    pub slo: SloConfig,
    /// Percentiles listed in `percentiles_{metric}_ms`.
    pub percentiles: Vec<f64>,
    /// Successful requests.
    pub completed: u64,
    /// Failed requests.
    pub failed: u64,
    /// Successful requests that met every objective.
    pub good: u64,
    /// Warmup records ignored.
    pub warmup_excluded: u64,
    /// Prompt tokens of successful requests.
    pub total_input_tokens: u64,
    /// Output tokens of successful requests.
    pub total_output_tokens: u64,
    /// Failed requests by kind.
    pub failures: BTreeMap<String, u64>,
    /// Successful requests by where their output-token count came from.
    pub output_tokens_source: BTreeMap<String, u64>,
    /// Earliest send of any record, warmup included.
    pub first_sent_ns: Option<u64>,
    /// Latest end of any record, warmup included.
    pub last_end_ns: Option<u64>,
    /// Every metric of [`Summary::METRICS`](super::Summary::METRICS), by name.
    pub metrics: BTreeMap<String, DistState>,
}

impl Aggregator {
    fn dists(&self) -> [(&'static str, &Dist); 7] {
        [
            ("ttft", &self.ttft),
            ("tpot", &self.tpot),
            ("itl", &self.itl),
            ("e2el", &self.e2el),
            ("ttft_from_scheduled", &self.ttft_sched),
            ("e2el_from_scheduled", &self.e2el_sched),
            ("schedule_lag", &self.lag),
        ]
    }

    fn dists_mut(&mut self) -> [(&'static str, &mut Dist); 7] {
        [
            ("ttft", &mut self.ttft),
            ("tpot", &mut self.tpot),
            ("itl", &mut self.itl),
            ("e2el", &mut self.e2el),
            ("ttft_from_scheduled", &mut self.ttft_sched),
            ("e2el_from_scheduled", &mut self.e2el_sched),
            ("schedule_lag", &mut self.lag),
        ]
    }

    /// The whole state, histograms encoded for interchange.
    ///
    /// # Errors
    /// [`MetricsError::Histogram`] when a histogram cannot be serialized.
    pub fn state(&self) -> Result<AggregatorState, MetricsError> {
        let mut metrics = BTreeMap::new();
        for (name, d) in self.dists() {
            metrics
                .insert(name.to_string(), DistState { moments: d.moments, histogram: interchange::encode(&d.hist)? });
        }
        Ok(AggregatorState {
            slo: self.slo,
            percentiles: self.percentiles.clone(),
            completed: self.completed,
            failed: self.failed,
            good: self.good,
            warmup_excluded: self.warmup,
            total_input_tokens: self.input_tokens,
            total_output_tokens: self.output_tokens,
            failures: self.failures.iter().map(|(_, k, n)| (k.clone(), *n)).collect(),
            output_tokens_source: self.sources.iter().map(|(s, n)| (super::kind_name(s, None), *n)).collect(),
            first_sent_ns: self.first_sent_ns,
            last_end_ns: self.last_end_ns,
            metrics,
        })
    }

    /// The aggregator a [`AggregatorState`] describes; it can go on recording.
    ///
    /// # Errors
    /// [`MetricsError::Corrupt`] for a missing metric, an undecodable histogram, a histogram
    /// with other bounds than the aggregator's, counts that contradict each other, an unknown
    /// token-count source or a percentile outside 0..=100.
    pub fn from_state(state: &AggregatorState) -> Result<Self, MetricsError> {
        let corrupt = |what: &str, reason: String| MetricsError::Corrupt { what: what.to_string(), reason };
        if let Some(p) = state.percentiles.iter().find(|p| !(0.0..=100.0).contains(*p)) {
            return Err(corrupt("aggregator state", format!("percentile {p} outside 0..=100")));
        }
        let mut agg = Aggregator::new(state.slo).with_percentiles(&state.percentiles);
        for (name, dist) in agg.dists_mut() {
            let what = format!("{name} histogram");
            let s = state.metrics.get(name).ok_or_else(|| corrupt(&what, "missing".into()))?;
            let hist = interchange::decode(&s.histogram, &what)?;
            if (hist.low(), hist.high(), hist.sigfig()) != (1, MAX_TRACKED_NS, 3) {
                let bounds = format!("bounds {}..={} ns, {} digits", hist.low(), hist.high(), hist.sigfig());
                return Err(corrupt(&what, format!("{bounds}; expected 1..={MAX_TRACKED_NS} ns, 3 digits")));
            }
            if hist.len() != s.moments.count() {
                let counts = format!("{} values in the histogram, {} in the moments", hist.len(), s.moments.count());
                return Err(corrupt(&what, counts));
            }
            *dist = Dist { hist, moments: s.moments };
        }
        let counts = [
            ("e2el", agg.e2el.moments.count(), state.completed),
            ("schedule_lag", agg.lag.moments.count(), state.completed + state.failed),
            ("failures", state.failures.values().sum(), state.failed),
            ("output_tokens_source", state.output_tokens_source.values().sum(), state.completed),
        ];
        if let Some((what, n, want)) = counts.into_iter().find(|(_, n, want)| n != want) {
            return Err(corrupt("aggregator state", format!("{what} counts {n}, the counters say {want}")));
        }
        if state.good > state.completed {
            return Err(corrupt("aggregator state", format!("{} good of {} completed", state.good, state.completed)));
        }
        for (name, &n) in &state.output_tokens_source {
            let source: TokenCountSource = serde_json::from_value(serde_json::Value::String(name.clone()))
                .map_err(|_| corrupt("aggregator state", format!("unknown output token source {name:?}")))?;
            agg.sources.push((source, n));
        }
        agg.failures = state.failures.iter().map(|(k, &n)| (None, k.clone(), n)).collect();
        agg.completed = state.completed;
        agg.failed = state.failed;
        agg.good = state.good;
        agg.warmup = state.warmup_excluded;
        agg.input_tokens = state.total_input_tokens;
        agg.output_tokens = state.total_output_tokens;
        agg.first_sent_ns = state.first_sent_ns;
        agg.last_end_ns = state.last_end_ns;
        Ok(agg)
    }

    /// Adds everything `other` recorded, as if its records had been recorded here (the
    /// percentile list stays this aggregator's).
    ///
    /// # Errors
    /// [`MetricsError::Mismatch`] when the objectives differ (goodput would mean nothing), or
    /// [`MetricsError::Histogram`] when a histogram cannot take the other's values.
    pub fn merge(&mut self, other: &Aggregator) -> Result<(), MetricsError> {
        if self.slo != other.slo {
            let show = |s: &SloConfig| serde_json::to_string(s).unwrap_or_default();
            return Err(MetricsError::Mismatch {
                what: "goodput objectives",
                left: show(&self.slo),
                right: show(&other.slo),
            });
        }
        for ((name, mine), (_, theirs)) in self.dists_mut().into_iter().zip(other.dists()) {
            mine.hist.add(&theirs.hist).map_err(|e| MetricsError::Histogram(format!("{name}: {e:?}")))?;
            mine.moments.merge(&theirs.moments);
        }
        self.completed += other.completed;
        self.failed += other.failed;
        self.good += other.good;
        self.warmup += other.warmup;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        for (kind, name, n) in &other.failures {
            match self.failures.iter_mut().find(|(_, k, _)| k == name) {
                Some((k, _, m)) => {
                    *m += n;
                    *k = k.or(*kind);
                }
                None => self.failures.push((*kind, name.clone(), *n)),
            }
        }
        for (source, n) in &other.sources {
            match self.sources.iter_mut().find(|(s, _)| s == source) {
                Some((_, m)) => *m += n,
                None => self.sources.push((*source, *n)),
            }
        }
        let pick = |a: Option<u64>, b: Option<u64>, f: fn(u64, u64) -> u64| match (a, b) {
            (Some(a), Some(b)) => Some(f(a, b)),
            (a, b) => a.or(b),
        };
        self.first_sent_ns = pick(self.first_sent_ns, other.first_sent_ns, u64::min);
        self.last_end_ns = pick(self.last_end_ns, other.last_end_ns, u64::max);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Aggregator, MetricsError, SloConfig, Summary};
    use crate::replay::{Failure, RequestRecord, TokenCountSource};
    use std::time::Duration;

    /// Deterministic, varied records: successes with ITLs, failures of two kinds, warmups.
    fn records(n: u64) -> Vec<RequestRecord> {
        (0..n)
            .map(|i| {
                let sent = i * 1_000_003 + i % 7 * 911;
                let failure = match i % 11 {
                    3 => Some(Failure::Timeout),
                    8 => Some(Failure::Http { status: 500, body: "x".into() }),
                    _ => None,
                };
                RequestRecord {
                    id: i,
                    conversation_id: format!("c{i}"),
                    turn: 0,
                    warmup: i < 3,
                    scheduled_ns: i * 1_000_000,
                    sent_ns: sent,
                    first_token_ns: Some(sent + 5_000_000 + i * i * 37),
                    itl_ns: (0..i % 5).map(|k| 1_000_000 + k * 17 + i).collect(),
                    end_ns: sent + 9_000_000 + i * 12_345,
                    input_tokens: 10 + (i % 13) as u32,
                    output_tokens: 1 + (i % 5) as u32,
                    output_tokens_source: if i % 4 == 0 {
                        TokenCountSource::ContentChunks
                    } else {
                        TokenCountSource::ServerUsage
                    },
                    failure,
                    text: None,
                }
            })
            .collect()
    }

    fn aggregate(recs: &[RequestRecord], slo: SloConfig) -> Aggregator {
        let mut a = Aggregator::new(slo);
        recs.iter().for_each(|r| a.record(r));
        a
    }

    fn assert_same(merged: &Summary, whole: &Summary) {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
        assert_eq!(
            (merged.completed, merged.failed, merged.warmup_excluded, &merged.failures),
            (whole.completed, whole.failed, whole.warmup_excluded, &whole.failures)
        );
        assert_eq!(
            (merged.total_input_tokens, merged.total_output_tokens),
            (whole.total_input_tokens, whole.total_output_tokens)
        );
        assert_eq!(merged.output_tokens_source, whole.output_tokens_source);
        assert_eq!(merged.request_goodput, whole.request_goodput);
        for name in Summary::METRICS {
            let (m, w) = (merged.metric(name).unwrap(), whole.metric(name).unwrap());
            // Histogram figures and extremes are identical; moments agree to rounding.
            assert_eq!(
                (m.count, m.median_ms, m.p90_ms, m.p99_ms, m.max_ms),
                (w.count, w.median_ms, w.p90_ms, w.p99_ms, w.max_ms),
                "{name}"
            );
            assert_eq!(m.percentiles_ms, w.percentiles_ms, "{name}");
            assert!(close(m.mean_ms, w.mean_ms) && close(m.std_ms, w.std_ms), "{name}: {m:?} vs {w:?}");
        }
    }

    #[test]
    fn merged_shards_equal_one_aggregator_over_every_record() {
        let slo = SloConfig { ttft_ms: Some(5.5), ..SloConfig::default() };
        let all = records(200);
        let whole = aggregate(&all, slo);
        // Conversation k to shard k % 3, as replay shards split a schedule.
        let mut shards: Vec<Aggregator> = (0..3).map(|_| Aggregator::new(slo)).collect();
        all.iter().enumerate().for_each(|(k, r)| shards[k % 3].record(r));
        let mut merged = Aggregator::new(slo);
        for s in &shards {
            merged.merge(s).unwrap();
        }
        let d = Duration::from_secs(2);
        assert_same(&merged.finish(d), &whole.finish(d));
        assert_eq!(merged.span_ns(), whole.span_ns());
        assert!(whole.finish(d).failures.len() == 2 && whole.finish(d).request_goodput.unwrap() > 0.0);
    }

    #[test]
    fn state_round_trips_through_json() {
        let agg = aggregate(&records(60), SloConfig::default()).with_percentiles(&[50.0, 99.5]);
        let state = agg.state().unwrap();
        let json = serde_json::to_string(&state).unwrap();
        let back = Aggregator::from_state(&serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(back.state().unwrap(), state);
        let d = Duration::from_millis(1500);
        assert_eq!(back.finish(d), agg.finish(d));
        // A restored aggregator goes on recording, failure kinds included.
        let (mut a, mut b) = (agg.clone(), back);
        for r in records(30) {
            a.record(&r);
            b.record(&r);
        }
        assert_eq!(b.finish(d), a.finish(d));
    }

    #[test]
    fn different_objectives_do_not_merge() {
        let mut a = Aggregator::new(SloConfig { ttft_ms: Some(1.0), ..SloConfig::default() });
        match a.merge(&Aggregator::default()) {
            Err(MetricsError::Mismatch { what, .. }) => assert_eq!(what, "goodput objectives"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn inconsistent_states_are_refused() {
        let good = aggregate(&records(40), SloConfig::default()).state().unwrap();
        type Spoil = Box<dyn Fn(&mut super::AggregatorState)>;
        let cases: Vec<(Spoil, &str)> = vec![
            (
                Box::new(|s| {
                    s.metrics.remove("itl");
                }),
                "itl histogram",
            ),
            (Box::new(|s| s.completed += 1), "e2el counts"),
            (Box::new(|s| s.metrics.get_mut("ttft").unwrap().histogram = "AAAA".into()), "ttft histogram"),
            (Box::new(|s| s.metrics.get_mut("tpot").unwrap().moments = Default::default()), "tpot histogram"),
            (
                Box::new(|s| {
                    s.output_tokens_source.insert("telepathy".into(), 0);
                }),
                "telepathy",
            ),
            (Box::new(|s| s.percentiles = vec![101.0]), "percentile"),
        ];
        for (spoil, expect) in cases {
            let mut s = good.clone();
            spoil(&mut s);
            match Aggregator::from_state(&s) {
                Err(e @ MetricsError::Corrupt { .. }) => assert!(e.to_string().contains(expect), "{e}"),
                other => panic!("{expect}: {other:?}"),
            }
        }
    }
}
