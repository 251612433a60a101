//! Per-row scoring: log-softmax of one row of logits against the token that followed.
//!
//! Each function follows llama-perplexity's arithmetic (which operations are done in `f32` and
//! which in `f64`, and in what order) so the numbers agree to the last printed digit. Every row is
//! computed sequentially; rows are independent, so scoring them in parallel does not change any
//! bit of the result.

/// `max` as `std::max(a, b)` computes it: `b` only if `a < b`.
#[inline]
fn cmax(a: f32, b: f32) -> f32 {
    if a < b {
        b
    } else {
        a
    }
}

/// `min` as `std::min(a, b)` computes it: `b` only if `b < a`.
#[inline]
fn cmin(a: f32, b: f32) -> f32 {
    if b < a {
        b
    } else {
        a
    }
}

#[inline]
fn sum_exp(logits: &[f32], max: f32) -> f64 {
    let mut sum = 0.0f64;
    for &l in logits {
        sum += f64::from((l - max).exp());
    }
    sum
}

/// Negative log-likelihood of `tok` (perplexity mode, no base file).
pub(crate) fn nll(logits: &[f32], tok: usize) -> f64 {
    let mut max = logits[0];
    for &l in &logits[1..] {
        max = cmax(max, l);
    }
    let sum = sum_exp(logits, max);
    -(f64::from(logits[tok] - max) - sum.ln())
}

/// llama-perplexity's rounding of a non-negative float to the nearest integer.
#[inline]
fn nearest_int(v: f32) -> i32 {
    let bits = (v + 12_582_912.0f32).to_bits() as i32;
    (bits & 0x007f_ffff) - 0x0040_0000
}

/// Negative log-likelihood of `tok`, quantizing the row's log-probabilities into `out`
/// (`4 + n_vocab` u16 values, plus padding left untouched): the `--kl-divergence-base` record.
pub(crate) fn nll_and_quantize(logits: &[f32], tok: usize, out: &mut [u16]) -> f64 {
    let mut max = logits[0];
    let mut min = logits[0];
    for &l in &logits[1..] {
        max = cmax(max, l);
        min = cmin(min, l);
    }
    min = cmax(min, max - 16.0);
    let sum = sum_exp(logits, max);
    let log_sum_exp = sum.ln() as f32;
    let min_log_prob = min - max - log_sum_exp;
    let scale = (max - min) / 65535.0f32;
    let s = scale.to_bits();
    let m = min_log_prob.to_bits();
    out[0] = s as u16;
    out[1] = (s >> 16) as u16;
    out[2] = m as u16;
    out[3] = (m >> 16) as u16;
    let q = &mut out[4..4 + logits.len()];
    if scale != 0.0 {
        let inv_scale = 1.0 / scale;
        for (o, &l) in q.iter_mut().zip(logits) {
            *o = if l > min { nearest_int(inv_scale * (l - min)) as u16 } else { 0 };
        }
    } else {
        q.fill(0);
    }
    f64::from(max + log_sum_exp - logits[tok])
}

/// Scale and offset of a quantized base row.
#[inline]
pub(crate) fn row_header(base: &[u16]) -> (f32, f32) {
    let scale = f32::from_bits(u32::from(base[0]) | (u32::from(base[1]) << 16));
    let min_log_prob = f32::from_bits(u32::from(base[2]) | (u32::from(base[3]) << 16));
    (scale, min_log_prob)
}

/// One row compared against the base model's quantized log-probabilities.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct KlRow {
    pub nll: f32,
    pub nll_base: f32,
    pub kld: f64,
    pub p_diff: f32,
    pub same_top: bool,
}

/// KL-divergence of one row of logits from the base record `base` (`4 + n_vocab` u16 values).
pub(crate) fn kl_row(logits: &[f32], base: &[u16], tok: usize) -> KlRow {
    let mut max = logits[0];
    let mut imax = 0usize;
    for (i, &l) in logits.iter().enumerate().skip(1) {
        if l > max {
            max = l;
            imax = i;
        }
    }
    let sum = sum_exp(logits, max);
    let log_sum_exp = sum.ln() as f32;
    let (scale, min_log_prob) = row_header(base);
    let b = &base[4..4 + logits.len()];

    let nll = max + log_sum_exp - logits[tok];
    let nll_base = -(scale * f32::from(b[tok]) + min_log_prob);
    let max_l = max + log_sum_exp;
    let mut kld = 0.0f64;
    let mut imax_base = 0usize;
    let mut p_log_base_max = 0.0f32;
    for (i, (&q, &l)) in b.iter().zip(logits).enumerate() {
        let p_log_base = scale * f32::from(q) + min_log_prob;
        if i == 0 || p_log_base > p_log_base_max {
            p_log_base_max = p_log_base;
            imax_base = i;
        }
        if p_log_base > -16.0 {
            let p_base = p_log_base.exp();
            kld += f64::from(p_base * (p_log_base - l + max_l));
        }
    }
    let p_base = (-nll_base).exp();
    let p = (-nll).exp();
    KlRow { nll, nll_base, kld, p_diff: p - p_base, same_top: imax == imax_base }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantized_row_reproduces_log_probs() {
        let logits: Vec<f32> = (0..101).map(|i| ((i * 37) % 23) as f32 * 0.7 - 5.0).collect();
        let mut q = vec![0u16; 4 + 102];
        let nll_q = nll_and_quantize(&logits, 7, &mut q);
        let nll_exact = nll(&logits, 7);
        assert!((nll_q - nll_exact).abs() < 1e-5, "{nll_q} vs {nll_exact}");
        // The model compared with itself: KLD ~ 0, same top token, nll = base nll.
        let r = kl_row(&logits, &q, 7);
        assert!(r.kld.abs() < 1e-3, "{}", r.kld);
        assert!(r.same_top);
        assert!((r.nll - r.nll_base).abs() < 1e-3);
        assert!(r.p_diff.abs() < 1e-3);
    }

    #[test]
    fn nearest_int_rounds() {
        assert_eq!(nearest_int(0.4), 0);
        assert_eq!(nearest_int(0.6), 1);
        assert_eq!(nearest_int(65535.0), 65535);
        assert_eq!(nearest_int(1234.5), 1234); // ties to even
    }
}
