//! Running sums and the statistics llama-perplexity derives from them.

use super::score::KlRow;

/// A value with its uncertainty (one standard error). Either can be NaN (an uncertainty from
/// one chunk, as llama-perplexity prints `nan`): JSON writes that as `null`, read back as NaN,
/// so such a result crosses the worker boundary.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Estimate {
    /// The value.
    #[serde(deserialize_with = "null_as_nan")]
    pub value: f64,
    /// Its uncertainty.
    #[serde(deserialize_with = "null_as_nan")]
    pub uncertainty: f64,
}

fn null_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(<Option<f64> as serde::Deserialize>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Mean and its uncertainty from sums, as llama-perplexity's KL mode computes them (0 below 11
/// values).
pub(crate) fn mean_and_uncertainty(sum: f64, sum2: f64, count: usize) -> (f64, f64) {
    if count < 1 {
        return (0.0, 0.0);
    }
    let f = sum / count as f64;
    let df = sum2 / count as f64 - f * f;
    let df = if df > 0.0 && count > 10 { (df / (count - 1) as f64).sqrt() } else { 0.0 };
    (f, df)
}

fn covariance(suma: f64, sumb: f64, sumab: f64, count: usize) -> f64 {
    if count < 10 {
        return 0.0;
    }
    let c = count as f64;
    (sumab / c - (suma / c) * (sumb / c)) / (c - 1.0)
}

/// PPL and its uncertainty from NLL sums, as llama-perplexity's perplexity mode prints them.
pub(crate) fn ppl_estimate(nll: f64, nll2: f64, count: usize) -> (f64, f64) {
    if count == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = nll / count as f64;
    let ppl = mean.exp();
    let var = nll2 / count as f64 - mean * mean;
    let unc = if var > 0.0 && count > 1 { (var / (count - 1) as f64).sqrt() * ppl } else { 0.0 };
    (ppl, unc)
}

/// llama-perplexity's `kl_divergence_result`: sums over scored tokens, added in token order.
#[derive(Debug, Clone, Default)]
pub(crate) struct KlSums {
    pub sum_nll: f64,
    pub sum_nll2: f64,
    pub sum_nll_base: f64,
    pub sum_nll_base2: f64,
    pub sum_nll_nll_base: f64,
    pub sum_kld: f64,
    pub sum_kld2: f64,
    pub sum_p_diff: f64,
    pub sum_p_diff2: f64,
    pub sum_p_diff4: f64,
    pub max_p_diff: f32,
    pub n_same_top: usize,
    pub count: usize,
}

impl KlSums {
    pub fn add(&mut self, r: &KlRow) {
        self.sum_nll += f64::from(r.nll);
        self.sum_nll2 += f64::from(r.nll * r.nll);
        self.sum_nll_base += f64::from(r.nll_base);
        self.sum_nll_base2 += f64::from(r.nll_base * r.nll_base);
        self.sum_nll_nll_base += f64::from(r.nll * r.nll_base);
        self.sum_kld += r.kld;
        self.sum_kld2 += r.kld * r.kld;
        self.count += 1;
        if r.same_top {
            self.n_same_top += 1;
        }
        self.sum_p_diff += f64::from(r.p_diff);
        let p_diff2 = f64::from(r.p_diff * r.p_diff);
        self.sum_p_diff2 += p_diff2;
        self.sum_p_diff4 += p_diff2 * p_diff2;
        self.max_p_diff = self.max_p_diff.max(r.p_diff.abs());
    }

    /// Running statistics (the per-chunk line of llama-perplexity's KL mode).
    pub fn running(&self) -> KlRunning {
        let (lp, lp_unc) = mean_and_uncertainty(self.sum_nll, self.sum_nll2, self.count);
        let ppl = (lp).exp();
        let (lb, lb_unc) = mean_and_uncertainty(self.sum_nll_base, self.sum_nll_base2, self.count);
        let cov = covariance(self.sum_nll, self.sum_nll_base, self.sum_nll_nll_base, self.count);
        let ln_ratio = lp - lb;
        let ln_ratio_unc = (lp_unc * lp_unc + lb_unc * lb_unc - 2.0 * cov).sqrt();
        let (kld, kld_unc) = mean_and_uncertainty(self.sum_kld, self.sum_kld2, self.count);
        let (mse, mse_unc) = mean_and_uncertainty(self.sum_p_diff2, self.sum_p_diff4, self.count);
        let rms = mse.sqrt();
        let rms_unc = 0.5 / rms * mse_unc;
        let top = self.n_same_top as f64 / self.count as f64;
        let top_unc = (top * (1.0 - top) / (self.count as f64 - 1.0)).sqrt();
        KlRunning {
            ppl: Estimate { value: ppl, uncertainty: ppl * lp_unc },
            ln_ppl_ratio: Estimate { value: ln_ratio, uncertainty: ln_ratio_unc },
            kld: Estimate { value: kld, uncertainty: kld_unc },
            p_diff_rms: Estimate { value: rms, uncertainty: rms_unc },
            same_top: Estimate { value: top, uncertainty: top_unc },
        }
    }

    /// The final PPL statistics.
    pub fn ppl_stats(&self) -> PplComparison {
        let (lp, lp_unc) = mean_and_uncertainty(self.sum_nll, self.sum_nll2, self.count);
        let ppl = lp.exp();
        let ppl_unc = ppl * lp_unc;
        let (lb, lb_unc) = mean_and_uncertainty(self.sum_nll_base, self.sum_nll_base2, self.count);
        let ppl_base = lb.exp();
        let ppl_base_unc = ppl_base * lb_unc;
        let cov = covariance(self.sum_nll, self.sum_nll_base, self.sum_nll_nll_base, self.count);
        let cor = cov / (lp_unc * lb_unc);
        let ln_ratio = lp - lb;
        let ln_ratio_unc = (lp_unc * lp_unc + lb_unc * lb_unc - 2.0 * cov).sqrt();
        let ratio = ln_ratio.exp();
        let ppl_cov = ppl * ppl_base * cov;
        PplComparison {
            ppl: Estimate { value: ppl, uncertainty: ppl_unc },
            ppl_base: Estimate { value: ppl_base, uncertainty: ppl_base_unc },
            ln_ppl_correlation: cor,
            ln_ppl_ratio: Estimate { value: ln_ratio, uncertainty: ln_ratio_unc },
            ppl_ratio: Estimate { value: ratio, uncertainty: ratio * ln_ratio_unc },
            ppl_diff: Estimate {
                value: ppl - ppl_base,
                uncertainty: (ppl_unc * ppl_unc + ppl_base_unc * ppl_base_unc - 2.0 * ppl_cov).sqrt(),
            },
        }
    }
}

/// Running KL-divergence statistics after a chunk (one line of llama-perplexity's table).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct KlRunning {
    /// PPL of the evaluated model, PPL(Q).
    pub ppl: Estimate,
    /// ln(PPL(Q)/PPL(base)).
    pub ln_ppl_ratio: Estimate,
    /// Mean KL divergence.
    pub kld: Estimate,
    /// RMS of the difference in probability of the right token (a fraction, not percent).
    pub p_diff_rms: Estimate,
    /// Fraction of positions where both models rank the same token first.
    pub same_top: Estimate,
}

/// PPL of the evaluated model against the base model's ("Perplexity statistics").
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct PplComparison {
    /// Mean PPL(Q).
    pub ppl: Estimate,
    /// Mean PPL(base) (from the base file's quantized log-probabilities).
    pub ppl_base: Estimate,
    /// Cor(ln(PPL(Q)), ln(PPL(base))), a fraction.
    pub ln_ppl_correlation: f64,
    /// Mean ln(PPL(Q)/PPL(base)).
    pub ln_ppl_ratio: Estimate,
    /// Mean PPL(Q)/PPL(base).
    pub ppl_ratio: Estimate,
    /// Mean PPL(Q)-PPL(base).
    pub ppl_diff: Estimate,
}

/// Order statistics of a per-token distribution, as llama-perplexity prints them.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Distribution {
    /// Maximum.
    pub max: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 75th percentile.
    pub p75: f64,
    /// Median.
    pub median: f64,
    /// 25th percentile.
    pub p25: f64,
    /// 10th percentile.
    pub p10: f64,
    /// 5th percentile.
    pub p5: f64,
    /// 1st percentile.
    pub p1: f64,
    /// 0.1th percentile.
    pub p0_1: f64,
    /// Minimum.
    pub min: f64,
}

impl Distribution {
    /// Sorts `values` and reads the percentiles with llama-perplexity's interpolation (in f32).
    pub(crate) fn of(values: &mut [f32]) -> Self {
        if values.is_empty() {
            return Distribution::default();
        }
        values.sort_by(f32::total_cmp);
        let n = values.len();
        let pct = |fraction: f32| -> f64 {
            if fraction <= 0.0 {
                return f64::from(values[0]);
            }
            if fraction >= 1.0 {
                return f64::from(values[n - 1]);
            }
            let mut p = fraction * (n - 1) as f32;
            let ip = p as usize;
            p -= ip as f32;
            f64::from((1.0 - p) * values[ip] + p * values[(ip + 1).min(n - 1)])
        };
        let median = if n % 2 == 0 { 0.5f32 * (values[n / 2] + values[n / 2 - 1]) } else { values[n / 2] };
        Distribution {
            max: f64::from(values[n - 1]),
            p99_9: pct(0.999),
            p99: pct(0.990),
            p95: pct(0.950),
            p90: pct(0.900),
            p75: pct(0.750),
            median: f64::from(median),
            p25: pct(0.250),
            p10: pct(0.100),
            p5: pct(0.050),
            p1: pct(0.010),
            p0_1: pct(0.001),
            min: f64::from(values[0]),
        }
    }
}

#[cfg(test)]
mod nan_tests {
    #[test]
    fn a_nan_estimate_survives_json() {
        let e = super::Estimate { value: 1.5, uncertainty: f64::NAN };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, r#"{"value":1.5,"uncertainty":null}"#);
        let back: super::Estimate = serde_json::from_str(&json).unwrap();
        assert!(back.value == 1.5 && back.uncertainty.is_nan());
    }
}
