//! Latency objectives over a whole run: `ttft:p99:500ms` holds when the run's 99th percentile
//! TTFT is at most 500 ms. A run meets its SLOs when every objective holds, at least one
//! request completed and none failed (a failed request has no latency to rank, and a rate that
//! drops requests is not one to serve at).

use super::SweepError;
use crate::replay::metrics::Summary;
use serde::{Deserialize, Serialize};

/// Metrics an objective can bound: [`Summary::METRICS`] less the client's own schedule lag.
pub const SLO_METRICS: [&str; 6] = ["ttft", "tpot", "itl", "e2el", "ttft_from_scheduled", "e2el_from_scheduled"];

/// One objective: the run's `percentile` of `metric` is at most `threshold_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    /// One of [`SLO_METRICS`].
    pub metric: String,
    /// 0 < percentile ≤ 100.
    pub percentile: f64,
    /// The bound, milliseconds.
    pub threshold_ms: f64,
}

/// What one objective measured in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectiveCheck {
    /// The objective.
    #[serde(flatten)]
    pub objective: Objective,
    /// The run's value, ms; `None` when the metric had no sample (then the objective fails).
    pub value_ms: Option<f64>,
    /// Whether it held.
    pub met: bool,
}

/// Objectives, all of which must hold (`--slo ttft:p99:500ms,tpot:p99:50ms`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Slo {
    /// The objectives.
    pub objectives: Vec<Objective>,
}

impl Slo {
    /// The distinct percentiles the objectives need, for an aggregator's percentile list.
    pub fn percentiles(&self) -> Vec<f64> {
        let mut p: Vec<f64> = self.objectives.iter().map(|o| o.percentile).collect();
        p.sort_by(f64::total_cmp);
        p.dedup();
        p
    }

    /// Checks every objective against `summary`, whose percentile lists must include
    /// [`Slo::percentiles`].
    pub fn check(&self, summary: &Summary) -> Vec<ObjectiveCheck> {
        self.objectives
            .iter()
            .map(|o| {
                let value_ms = summary
                    .metric(&o.metric)
                    .filter(|s| s.count > 0)
                    .and_then(|s| s.percentiles_ms.iter().find(|(p, _)| *p == o.percentile))
                    .map(|&(_, v)| v);
                ObjectiveCheck { objective: o.clone(), value_ms, met: value_ms.is_some_and(|v| v <= o.threshold_ms) }
            })
            .collect()
    }

    /// Whether a run with these checks, `completed` successes and `failed` failures meets the
    /// SLOs.
    pub fn met(checks: &[ObjectiveCheck], completed: u64, failed: u64) -> bool {
        completed > 0 && failed == 0 && checks.iter().all(|c| c.met)
    }
}

/// `metric:pNN:THRESHOLD` items separated by commas; thresholds in `us`, `ms` or `s`;
/// `e2e` is `e2el`, `median` is `p50`.
impl std::str::FromStr for Slo {
    type Err = SweepError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let objectives: Vec<Objective> =
            s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(objective).collect::<Result<_, _>>()?;
        if objectives.is_empty() {
            return Err(SweepError::Slo { part: s.to_string(), reason: "no objective given".into() });
        }
        Ok(Slo { objectives })
    }
}

fn objective(part: &str) -> Result<Objective, SweepError> {
    let bad = |reason: String| SweepError::Slo { part: part.to_string(), reason };
    let fields: Vec<&str> = part.split(':').map(str::trim).collect();
    let [metric, percentile, threshold] = fields[..] else {
        return Err(bad("expected metric:percentile:threshold, e.g. ttft:p99:500ms".into()));
    };
    let metric = match metric {
        "e2e" => "e2el",
        "e2e_from_scheduled" => "e2el_from_scheduled",
        m => m,
    };
    if !SLO_METRICS.contains(&metric) {
        return Err(bad(format!("unknown metric {metric:?}: expected one of {}", SLO_METRICS.join(", "))));
    }
    let percentile = match percentile {
        "median" => 50.0,
        p => p
            .strip_prefix('p')
            .and_then(|n| n.parse::<f64>().ok())
            .filter(|n| *n > 0.0 && *n <= 100.0)
            .ok_or_else(|| bad(format!("percentile {p:?}: expected pNN with 0 < NN <= 100 (p50, p99, p99.9)")))?,
    };
    let (number, scale) = if let Some(n) = threshold.strip_suffix("us") {
        (n, 1e-3)
    } else if let Some(n) = threshold.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = threshold.strip_suffix('s') {
        (n, 1e3)
    } else {
        return Err(bad(format!("threshold {threshold:?} needs a unit: us, ms or s")));
    };
    let threshold_ms = number
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(|v| v * scale)
        .ok_or_else(|| bad(format!("threshold {threshold:?}: expected a number > 0 with its unit")))?;
    Ok(Objective { metric: metric.to_string(), percentile, threshold_ms })
}

impl std::fmt::Display for Objective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:p{}:{}ms", self.metric, self.percentile, self.threshold_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::metrics::LatencyStats;

    fn slo(s: &str) -> Slo {
        s.parse().unwrap()
    }

    #[test]
    fn objectives_parse_with_units_and_any_percentile() {
        let s = slo("ttft:p99:500ms, tpot:p99:50ms,itl:p99.9:0.2s,e2e:median:1500000us,ttft_from_scheduled:p75:2s");
        let got: Vec<(&str, f64, f64)> =
            s.objectives.iter().map(|o| (o.metric.as_str(), o.percentile, o.threshold_ms)).collect();
        assert_eq!(
            got,
            [
                ("ttft", 99.0, 500.0),
                ("tpot", 99.0, 50.0),
                ("itl", 99.9, 200.0),
                ("e2el", 50.0, 1500.0),
                ("ttft_from_scheduled", 75.0, 2000.0)
            ]
        );
        assert_eq!(s.percentiles(), [50.0, 75.0, 99.0, 99.9]);
        assert_eq!(s.objectives[0].to_string(), "ttft:p99:500ms");
    }

    #[test]
    fn malformed_objectives_say_which_part_and_why() {
        for (bad, why) in [
            ("ttft:p99", "metric:percentile:threshold"),
            ("schedule_lag:p99:1ms", "unknown metric"),
            ("ttft:99:5ms", "percentile"),
            ("ttft:p0:5ms", "percentile"),
            ("ttft:p101:5ms", "percentile"),
            ("ttft:p99:500", "unit"),
            ("ttft:p99:-5ms", "number > 0"),
            ("ttft:p99:xms", "number > 0"),
            ("", "no objective"),
        ] {
            let e = bad.parse::<Slo>().unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn a_run_meets_when_every_objective_holds_and_nothing_failed() {
        let s = slo("ttft:p99:500ms,tpot:p90:50ms");
        let stats =
            |p: f64, v: f64| LatencyStats { count: 10, percentiles_ms: vec![(p, v)], ..LatencyStats::default() };
        let mut summary = Summary { ttft: stats(99.0, 400.0), tpot: stats(90.0, 50.0), ..Summary::default() };
        let checks = s.check(&summary);
        assert_eq!(
            checks.iter().map(|c| (c.value_ms, c.met)).collect::<Vec<_>>(),
            [(Some(400.0), true), (Some(50.0), true)]
        );
        assert!(Slo::met(&checks, 10, 0));
        assert!(!Slo::met(&checks, 10, 1), "a failed request fails the run");
        assert!(!Slo::met(&checks, 0, 0), "nothing completed");
        summary.ttft = stats(99.0, 500.1);
        assert!(!Slo::met(&s.check(&summary), 10, 0));
        summary.tpot = LatencyStats::default();
        let c = s.check(&summary);
        assert_eq!((c[1].value_ms, c[1].met), (None, false), "no samples: not met");
    }
}
