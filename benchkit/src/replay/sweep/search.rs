//! The rate plans as pure logic over a probe (`rate -> Outcome`), so the stop rules and the
//! bisection are tested without a server.
//!
//! * Saturation: rates `start, start·factor, ...` (at most `max_steps`) until the achieved
//!   throughput grows by less than `min_gain` over the previous step, or falls below
//!   `min_efficiency` of the offered rate (the server already queues most of the load). The
//!   saturation point is the step with the highest achieved throughput.
//! * Max rate: from `min`, the rate grows by `factor` (capped at `max`) until a run fails its
//!   SLOs; the bracket `[last passing, first failing]` is then bisected geometrically (rates
//!   span decades) until `failing / passing ≤ 1 + tolerance`. It assumes that meeting the SLOs
//!   is monotone in the rate: noise near the boundary moves the answer within the bracket.

use serde::{Deserialize, Serialize};

/// What a probe measured at one rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// Achieved requests per second.
    pub achieved: f64,
    /// Whether the run met the SLOs (a max-rate search needs it; `None` without SLOs).
    pub meets_slo: Option<bool>,
}

/// `--sweep saturation`'s parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SaturationConfig {
    /// First rate, req/s.
    pub start: f64,
    /// Each step's rate is the previous one's times this (> 1).
    pub factor: f64,
    /// At most this many runs.
    pub max_steps: usize,
    /// Saturated when the achieved throughput grows by less than this fraction (0.05 = 5 %).
    pub min_gain: f64,
    /// Saturated when achieved / offered falls below this.
    pub min_efficiency: f64,
}

impl Default for SaturationConfig {
    fn default() -> Self {
        SaturationConfig { start: 1.0, factor: 2.0, max_steps: 8, min_gain: 0.05, min_efficiency: 0.5 }
    }
}

/// `--search max-rate`'s parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SearchConfig {
    /// Lowest rate tried, req/s.
    pub min: f64,
    /// Highest rate tried, req/s.
    pub max: f64,
    /// Growth while bracketing (> 1).
    pub factor: f64,
    /// Relative width the bracket is narrowed to (0.1: failing ≤ 1.1 × passing).
    pub tolerance: f64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig { min: 1.0, max: 64.0, factor: 2.0, tolerance: 0.1 }
    }
}

/// Where a saturation sweep stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saturation {
    /// Whether a stop rule fired (else the steps ran out first).
    pub saturated: bool,
    /// Offered rate of the step with the highest achieved throughput, req/s.
    pub rate: f64,
    /// That step's achieved throughput, req/s.
    pub achieved: f64,
    /// Why the sweep stopped.
    pub reason: String,
}

/// The answer of a max-rate search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaxRate {
    /// Largest tested rate that met the SLOs; `None` when even `min` failed.
    pub max_rate: Option<f64>,
    /// Smallest tested rate above it that failed; `None` when `max` passed.
    pub failing_rate: Option<f64>,
    /// The tolerance the bracket was narrowed to.
    pub tolerance: f64,
    /// The range searched, req/s.
    pub range: [f64; 2],
    /// The answer in words.
    pub reason: String,
}

fn gt1(v: f64) -> bool {
    v.is_finite() && v > 1.0
}

fn pos(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

impl SaturationConfig {
    /// Checks the parameters; the message names what is wrong.
    ///
    /// # Errors
    /// A description of the first bad parameter.
    pub fn validate(&self) -> Result<(), String> {
        if !pos(self.start) {
            return Err(format!("start rate {} is not > 0", self.start));
        }
        if !gt1(self.factor) {
            return Err(format!("factor {} is not > 1", self.factor));
        }
        if self.max_steps < 2 {
            return Err(format!("{} steps: a saturation sweep needs at least 2", self.max_steps));
        }
        if !(self.min_gain.is_finite() && self.min_gain >= 0.0) {
            return Err(format!("gain {} is not >= 0", self.min_gain));
        }
        if !(self.min_efficiency.is_finite() && (0.0..=1.0).contains(&self.min_efficiency)) {
            return Err(format!("efficiency {} is not in 0..=1", self.min_efficiency));
        }
        Ok(())
    }
}

impl SearchConfig {
    /// Checks the parameters; the message names what is wrong.
    ///
    /// # Errors
    /// A description of the first bad parameter.
    pub fn validate(&self) -> Result<(), String> {
        if !(pos(self.min) && pos(self.max) && self.min < self.max) {
            return Err(format!("range {}..{}: expected 0 < min < max", self.min, self.max));
        }
        if !gt1(self.factor) {
            return Err(format!("factor {} is not > 1", self.factor));
        }
        if !pos(self.tolerance) {
            return Err(format!("tolerance {} is not > 0", self.tolerance));
        }
        Ok(())
    }
}

/// `x` to 4 significant digits (rates people read and type again), unless that leaves the
/// open interval `(lo, hi)`.
fn readable(x: f64, lo: f64, hi: f64) -> f64 {
    // Dividing by an exact power of ten gives the double nearest the decimal, as parsing it.
    let digits = 3 - x.log10().floor() as i32;
    let r = if digits >= 0 {
        (x * 10f64.powi(digits)).round() / 10f64.powi(digits)
    } else {
        (x / 10f64.powi(-digits)).round() * 10f64.powi(-digits)
    };
    if lo < r && r < hi {
        r
    } else {
        x
    }
}

/// Runs a saturation sweep (`config` valid) with `probe`.
///
/// # Errors
/// The probe's first error.
pub fn saturate<E>(
    config: &SaturationConfig,
    mut probe: impl FnMut(f64) -> Result<Outcome, E>,
) -> Result<Saturation, E> {
    let mut best: Option<(f64, f64)> = None;
    let mut previous: Option<f64> = None;
    let mut rate = config.start;
    for _ in 0..config.max_steps {
        let achieved = probe(rate)?.achieved;
        if best.map_or(true, |(_, a)| achieved > a) {
            best = Some((rate, achieved));
        }
        let stop = if achieved < config.min_efficiency * rate {
            Some(format!(
                "achieved {achieved:.3} req/s at {rate:.3} offered: below {} of the offered rate",
                config.min_efficiency
            ))
        } else {
            previous.filter(|&p| achieved < p * (1.0 + config.min_gain)).map(|p| {
                format!(
                    "achieved {achieved:.3} req/s at {rate:.3} offered: less than {:.0} % above the previous step's {p:.3}",
                    config.min_gain * 100.0
                )
            })
        };
        let (best_rate, best_achieved) = best.unwrap_or((rate, achieved));
        if let Some(reason) = stop {
            return Ok(Saturation { saturated: true, rate: best_rate, achieved: best_achieved, reason });
        }
        previous = Some(achieved);
        rate *= config.factor;
    }
    let (rate, achieved) = best.unwrap_or((config.start, 0.0));
    let reason = format!("throughput still growing after {} steps: not saturated", config.max_steps);
    Ok(Saturation { saturated: false, rate, achieved, reason })
}

/// Finds the largest rate meeting the SLOs (`config` valid) with `probe`; an outcome without
/// an SLO verdict counts as failing.
///
/// # Errors
/// The probe's first error.
pub fn max_rate<E>(config: &SearchConfig, mut probe: impl FnMut(f64) -> Result<Outcome, E>) -> Result<MaxRate, E> {
    let mut meets = |rate: f64| probe(rate).map(|o| o.meets_slo == Some(true));
    let done = |max_rate: Option<f64>, failing_rate: Option<f64>, reason: String| MaxRate {
        max_rate,
        failing_rate,
        tolerance: config.tolerance,
        range: [config.min, config.max],
        reason,
    };
    let (mut pass, mut rate) = (None, config.min);
    let mut fail = loop {
        if !meets(rate)? {
            break rate;
        }
        pass = Some(rate);
        if rate >= config.max {
            return Ok(done(pass, None, format!("every rate up to the maximum {} req/s met the SLOs", config.max)));
        }
        rate = (rate * config.factor).min(config.max);
    };
    let Some(mut pass) = pass else {
        return Ok(done(None, Some(fail), format!("the minimum rate {} req/s did not meet the SLOs", config.min)));
    };
    while fail / pass > 1.0 + config.tolerance {
        let mid = readable((pass * fail).sqrt(), pass, fail);
        if meets(mid)? {
            pass = mid;
        } else {
            fail = mid;
        }
    }
    let reason = format!(
        "{pass:.3} req/s met the SLOs and {fail:.3} did not (bracket within {:.0} %)",
        config.tolerance * 100.0
    );
    Ok(done(Some(pass), Some(fail), reason))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    /// A server that serves up to `capacity` req/s and whose p99 latency grows with the load.
    fn server(capacity: f64, runs: &mut Vec<f64>) -> impl FnMut(f64) -> Result<Outcome, Infallible> + '_ {
        move |rate| {
            runs.push(rate);
            let latency_ms = 100.0 / (1.0 - (rate / capacity).min(0.999));
            Ok(Outcome { achieved: rate.min(capacity), meets_slo: Some(latency_ms <= 450.0) })
        }
    }

    #[test]
    fn bisection_finds_the_boundary_within_tolerance_in_few_runs() {
        // 450 ms at 7/9 of the capacity: the max rate.
        for (capacity, min, max, tolerance) in
            [(10.0, 1.0, 64.0, 0.1), (10.0, 0.5, 64.0, 0.01), (3.7, 0.1, 1000.0, 0.05)]
        {
            let mut runs = Vec::new();
            let c = SearchConfig { min, max, factor: 2.0, tolerance };
            let r = max_rate(&c, server(capacity, &mut runs)).unwrap();
            let (pass, fail) = (r.max_rate.unwrap(), r.failing_rate.unwrap());
            let truth = capacity * 7.0 / 9.0;
            assert!(pass <= truth && truth < fail, "{pass} {truth} {fail}");
            assert!(fail / pass <= 1.0 + tolerance, "{pass} {fail}");
            assert!(runs.contains(&pass) && runs.contains(&fail));
            let bracket = 1.0 + (max / min).log2().ceil();
            let bisect = (2f64.ln() / (1.0 + tolerance).ln()).log2().ceil();
            assert!(runs.len() as f64 <= bracket + bisect, "{} runs: {runs:?}", runs.len());
            assert_eq!(r.range, [min, max]);
        }
    }

    #[test]
    fn a_failing_minimum_and_a_passing_maximum_are_answers_not_errors() {
        let mut runs = Vec::new();
        let c = SearchConfig { min: 8.0, max: 64.0, factor: 2.0, tolerance: 0.1 };
        let r = max_rate(&c, server(10.0, &mut runs)).unwrap();
        assert_eq!((r.max_rate, r.failing_rate, runs.len()), (None, Some(8.0), 1));
        assert!(r.reason.contains("minimum"), "{}", r.reason);
        let mut runs = Vec::new();
        let c = SearchConfig { min: 1.0, max: 6.0, factor: 2.0, tolerance: 0.1 };
        let r = max_rate(&c, server(10.0, &mut runs)).unwrap();
        assert_eq!((r.max_rate, r.failing_rate), (Some(6.0), None));
        assert_eq!(runs, [1.0, 2.0, 4.0, 6.0], "the last step is capped at the maximum");
    }

    #[test]
    fn saturation_stops_when_throughput_stops_growing() {
        // Capacity 10: 16 achieves 10 (+25 % over 8, and above half of 16); 32 achieves 10,
        // below half the offered rate.
        let mut runs = Vec::new();
        let s = saturate(&SaturationConfig::default(), server(10.0, &mut runs)).unwrap();
        assert_eq!(runs, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]);
        assert!(s.saturated);
        assert_eq!((s.rate, s.achieved), (16.0, 10.0));
        assert!(s.reason.contains("below 0.5"), "{}", s.reason);
        // A gain rule only: 32 gives nothing over 16.
        let mut runs = Vec::new();
        let c = SaturationConfig { min_efficiency: 0.0, ..SaturationConfig::default() };
        let s = saturate(&c, server(10.0, &mut runs)).unwrap();
        assert_eq!((runs.len(), s.rate), (6, 16.0));
        assert!(s.reason.contains("less than 5 %"), "{}", s.reason);
        // Growth of 3 % per step is saturation at 5 %, not at 1 %.
        let mut n = 0;
        let slow = |_rate: f64| -> Result<Outcome, Infallible> {
            n += 1;
            Ok(Outcome { achieved: 1.03f64.powi(n), meets_slo: None })
        };
        let c = SaturationConfig { min_efficiency: 0.0, ..SaturationConfig::default() };
        assert!(saturate(&c, slow).unwrap().saturated);
        let mut n = 0;
        let slow = |_rate: f64| -> Result<Outcome, Infallible> {
            n += 1;
            Ok(Outcome { achieved: 1.03f64.powi(n), meets_slo: None })
        };
        let c = SaturationConfig { min_efficiency: 0.0, min_gain: 0.01, max_steps: 4, ..SaturationConfig::default() };
        let s = saturate(&c, slow).unwrap();
        assert!(!s.saturated && s.reason.contains("4 steps"), "{s:?}");
    }

    #[test]
    fn midpoints_are_rounded_to_four_digits_inside_the_bracket() {
        assert_eq!(readable(5.656854, 4.0, 8.0), 5.657);
        assert_eq!(readable(0.0123456, 0.01, 0.02), 0.01235);
        assert_eq!(readable(1.00004, 1.0, 1.00009), 1.00004, "rounding would leave the bracket");
        let mut runs = Vec::new();
        let c = SearchConfig { min: 1.0, max: 64.0, factor: 2.0, tolerance: 0.1 };
        max_rate(&c, server(10.0, &mut runs)).unwrap();
        assert!(runs.iter().all(|r| format!("{r}").len() <= 5), "{runs:?}");
    }

    #[test]
    fn bad_parameters_are_described() {
        assert!(SearchConfig { min: 4.0, max: 2.0, ..SearchConfig::default() }
            .validate()
            .unwrap_err()
            .contains("min < max"));
        assert!(SearchConfig { tolerance: 0.0, ..SearchConfig::default() }.validate().is_err());
        assert!(SaturationConfig { factor: 1.0, ..SaturationConfig::default() }
            .validate()
            .unwrap_err()
            .contains("factor"));
        assert!(SaturationConfig { max_steps: 1, ..SaturationConfig::default() }.validate().is_err());
        assert!(SearchConfig::default().validate().is_ok() && SaturationConfig::default().validate().is_ok());
    }
}
