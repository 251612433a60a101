//! Comparing two small samples (a placement arm against the baseline, a few rounds each)
//! without assuming normality: medians, percentile-bootstrap intervals, and the Mann-Whitney
//! rank test, exact when the samples are small and free of ties.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Bootstrap resamples per interval: enough for stable 2.5/97.5 percentiles.
const RESAMPLES: usize = 10_000;

/// The median; `None` for no values. NaNs sort last.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 })
}

fn resampled_median(values: &[f64], rng: &mut ChaCha8Rng, buf: &mut Vec<f64>) -> f64 {
    buf.clear();
    buf.extend((0..values.len()).map(|_| values[rng.random_range(0..values.len())]));
    buf.sort_by(f64::total_cmp);
    let m = buf.len() / 2;
    if buf.len() % 2 == 1 {
        buf[m]
    } else {
        (buf[m - 1] + buf[m]) / 2.0
    }
}

fn percentiles(mut stats: Vec<f64>) -> [f64; 2] {
    stats.sort_by(f64::total_cmp);
    let at = |q: f64| stats[((stats.len() - 1) as f64 * q).round() as usize];
    [at(0.025), at(0.975)]
}

/// Percentile-bootstrap 95% interval of the median, seeded; `None` for no values.
pub fn bootstrap_median_ci(values: &[f64], seed: u64) -> Option<[f64; 2]> {
    if values.is_empty() {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut buf = Vec::with_capacity(values.len());
    Some(percentiles((0..RESAMPLES).map(|_| resampled_median(values, &mut rng, &mut buf)).collect()))
}

/// Percentile-bootstrap 95% interval of `median(a) / median(b)`, each sample resampled on its
/// own (the arms are independent trials); `None` when either is empty.
pub fn bootstrap_ratio_ci(a: &[f64], b: &[f64], seed: u64) -> Option<[f64; 2]> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut ba, mut bb) = (Vec::with_capacity(a.len()), Vec::with_capacity(b.len()));
    let ratios = (0..RESAMPLES)
        .map(|_| resampled_median(a, &mut rng, &mut ba) / resampled_median(b, &mut rng, &mut bb))
        .collect();
    Some(percentiles(ratios))
}

fn resampled_mean(values: &[f64], rng: &mut ChaCha8Rng) -> f64 {
    (0..values.len()).map(|_| values[rng.random_range(0..values.len())]).sum::<f64>() / values.len() as f64
}

/// Percentile-bootstrap 95% interval of the mean, seeded; `None` for no values.
pub fn bootstrap_mean_ci(values: &[f64], seed: u64) -> Option<[f64; 2]> {
    if values.is_empty() {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Some(percentiles((0..RESAMPLES).map(|_| resampled_mean(values, &mut rng)).collect()))
}

/// Percentile-bootstrap 95% interval of `mean(a) / mean(b)`, each sample resampled on its own;
/// `None` when either is empty.
pub fn bootstrap_mean_ratio_ci(a: &[f64], b: &[f64], seed: u64) -> Option<[f64; 2]> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Some(percentiles((0..RESAMPLES).map(|_| resampled_mean(a, &mut rng) / resampled_mean(b, &mut rng)).collect()))
}

/// Two-sided Mann-Whitney U test p-value of `a` against `b`. Exact (the U distribution
/// counted over every arrangement) when there are no ties and at most 40 values; otherwise the
/// normal approximation with tie and continuity corrections. `None` when either is empty.
pub fn mann_whitney_p(a: &[f64], b: &[f64]) -> Option<f64> {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let mut all: Vec<(f64, bool)> = a.iter().map(|&x| (x, true)).chain(b.iter().map(|&x| (x, false))).collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    // Average ranks over ties; `tie_term` is sum(t^3 - t) over tie groups.
    let (mut rank_sum_a, mut tie_term, mut i) = (0.0, 0.0, 0);
    while i < all.len() {
        let j = i + all[i..].iter().take_while(|v| v.0 == all[i].0).count();
        let rank = (i + j + 1) as f64 / 2.0;
        rank_sum_a += rank * all[i..j].iter().filter(|v| v.1).count() as f64;
        let t = (j - i) as f64;
        tie_term += t * t * t - t;
        i = j;
    }
    let u = rank_sum_a - (n1 * (n1 + 1)) as f64 / 2.0;
    let (f1, f2) = (n1 as f64, n2 as f64);
    if tie_term == 0.0 && n1 + n2 <= 40 {
        let counts = u_distribution(n1, n2);
        let total: f64 = counts.iter().sum();
        let u = u.round() as usize;
        let below: f64 = counts[..=u].iter().sum();
        let above: f64 = counts[u..].iter().sum();
        return Some((2.0 * below.min(above) / total).min(1.0));
    }
    let mean = f1 * f2 / 2.0;
    let n = f1 + f2;
    let var = f1 * f2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if var <= 0.0 {
        return Some(1.0);
    }
    let z = ((u - mean).abs() - 0.5).max(0.0) / var.sqrt();
    Some((2.0 * normal_upper_tail(z)).min(1.0))
}

/// How many arrangements of `n1` + `n2` distinct values give each U from 0 to n1*n2.
fn u_distribution(n1: usize, n2: usize) -> Vec<f64> {
    // c[j][u] for the current i: arrangements of i values of a and j of b with statistic u,
    // from c(i, j, u) = c(i-1, j, u-j) + c(i, j-1, u).
    let max_u = n1 * n2;
    let mut prev: Vec<Vec<f64>> = (0..=n2)
        .map(|_| {
            let mut v = vec![0.0; max_u + 1];
            v[0] = 1.0;
            v
        })
        .collect();
    for _ in 1..=n1 {
        let mut cur = vec![vec![0.0; max_u + 1]; n2 + 1];
        cur[0][0] = 1.0;
        for j in 1..=n2 {
            for u in 0..=max_u {
                let from_a = if u >= j { prev[j][u - j] } else { 0.0 };
                cur[j][u] = from_a + cur[j - 1][u];
            }
        }
        prev = cur;
    }
    prev.swap_remove(n2)
}

/// P(Z > z) for a standard normal Z (erfc via Abramowitz-Stegun 7.1.26, |error| < 1.5e-7).
fn normal_upper_tail(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-x * x).exp();
    let erfc = if x >= 0.0 { erfc } else { 2.0 - erfc };
    erfc / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn mann_whitney_exact_matches_tables() {
        // Fully separated samples of 5 and 5: U = 0, p = 2 / C(10, 5) = 2/252.
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let b = [6.0, 7.0, 8.0, 9.0, 10.0];
        assert!((mann_whitney_p(&a, &b).unwrap() - 2.0 / 252.0).abs() < 1e-12);
        assert!((mann_whitney_p(&b, &a).unwrap() - 2.0 / 252.0).abs() < 1e-12);
        // Interleaved: no evidence of a difference.
        let a = [1.0, 3.0, 5.0, 7.0, 9.0];
        let b = [2.0, 4.0, 6.0, 8.0, 10.0];
        assert!(mann_whitney_p(&a, &b).unwrap() > 0.6);
        // 3 vs 3 separated: 2/20 = 0.1 (scipy.stats.mannwhitneyu(method="exact") gives 0.1).
        assert!((mann_whitney_p(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).unwrap() - 0.1).abs() < 1e-12);
        assert_eq!(mann_whitney_p(&[], &[1.0]), None);
    }

    #[test]
    fn mann_whitney_with_ties_uses_the_corrected_normal() {
        // By hand: U = 2.5, mean 8, var 16/12 * (9 - 30/56), z = (5.5 - 0.5) / sd = 1.4884,
        // p = 0.1366 (scipy's mannwhitneyu, asymptotic with continuity, uses the same formula).
        let p = mann_whitney_p(&[1.0, 2.0, 2.0, 3.0], &[2.0, 3.0, 4.0, 5.0]).unwrap();
        assert!((p - 0.1366).abs() < 1e-3, "{p}");
        assert_eq!(mann_whitney_p(&[1.0, 1.0], &[1.0, 1.0]), Some(1.0));
    }

    #[test]
    fn normal_tail() {
        assert!((normal_upper_tail(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_upper_tail(1.959_964) - 0.025).abs() < 1e-6);
    }

    #[test]
    fn bootstrap_intervals_cover_the_estimate_and_are_seeded() {
        let a = [10.0, 11.0, 9.5, 10.5, 10.2];
        let b = [5.0, 5.5, 4.8, 5.1, 5.2];
        let ci = bootstrap_median_ci(&a, 1).unwrap();
        assert!(ci[0] <= 10.2 && 10.2 <= ci[1] && ci[0] >= 9.5 && ci[1] <= 11.0, "{ci:?}");
        assert_eq!(bootstrap_median_ci(&a, 1), Some(ci));
        let r = bootstrap_ratio_ci(&a, &b, 1).unwrap();
        let point = 10.2 / 5.1;
        assert!(r[0] <= point && point <= r[1] && r[0] > 1.7 && r[1] < 2.4, "{r:?}");
        assert_eq!(bootstrap_median_ci(&[], 1), None);
        assert_eq!(bootstrap_median_ci(&[3.0], 9), Some([3.0, 3.0]));
    }
}
