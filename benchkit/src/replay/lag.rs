//! Schedule lag split by cause: the dispatcher late, the request's task started late, the
//! target waiting before it sent. The driver keeps one histogram per part (three updates and two
//! clock reads per request); the parts add up to each request's `sent - scheduled`.

use hdrhistogram::Histogram;

/// Schedule lag split by cause, over the measured (non-warmup) first turns of conversations:
/// `dispatch + task_start + target_wait = sent - scheduled` for each request.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LagBreakdown {
    /// The dispatcher handed the request over after its time: the timer woke late, the
    /// dispatcher's thread was busy or descheduled, or a `max_concurrency` slot was awaited.
    pub dispatch: LagPart,
    /// The request's task was first polled after the hand-off: the runtime's workers were busy
    /// with other tasks (the client's CPU is saturated, at least in bursts).
    pub task_start: LagPart,
    /// The target waited before sending: request encoding and, for HTTP with
    /// `max_connections`, a free connection slot.
    pub target_wait: LagPart,
    /// The part of each request's lag spent behind `max_concurrency`: its own wait for a slot,
    /// and an earlier request's wait that held the dispatcher past this one's arrival. Empty
    /// without `max_concurrency`.
    #[serde(default)]
    pub slot_wait: LagPart,
    /// The lag less `slot_wait`: what the client itself added. With `max_concurrency` the
    /// waits for a slot are the bound doing its job (vLLM times requests from the slot), so the
    /// self-check judges the client by this; without it, it is the whole lag.
    #[serde(default)]
    pub client: LagPart,
}

/// Distribution of one part of the lag, ms (nearest-rank percentiles of an HDR histogram).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LagPart {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub median_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl LagPart {
    pub(super) fn of(h: &Histogram<u64>) -> Self {
        let ms = |ns: u64| ns as f64 / 1e6;
        if h.is_empty() {
            return Self::default();
        }
        LagPart {
            count: h.len(),
            mean_ms: h.mean() / 1e6,
            median_ms: ms(h.value_at_quantile(0.5)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// 1 ns to one hour, 3 significant digits (as the metrics' histograms).
pub(super) fn lag_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, super::metrics::MAX_TRACKED_NS, 3).expect("valid histogram bounds")
}

/// Records `ns` (0 is counted as 1 ns, the histogram's floor; larger than an hour is clamped).
pub(super) fn record_ns(h: &mut Histogram<u64>, ns: u64) {
    h.saturating_record(ns.max(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_summarise_their_histogram_in_ms() {
        assert_eq!(LagPart::of(&lag_histogram()), LagPart::default());
        let mut h = lag_histogram();
        for us in 1..=100u64 {
            record_ns(&mut h, us * 1000);
        }
        record_ns(&mut h, 0); // counted at the 1 ns floor
        let p = LagPart::of(&h);
        assert_eq!(p.count, 101);
        assert!((p.median_ms - 0.050).abs() < 0.0001, "{p:?}");
        assert!((p.p99_ms - 0.099).abs() < 0.0001 && (p.max_ms - 0.100).abs() < 0.0001, "{p:?}");
    }
}
