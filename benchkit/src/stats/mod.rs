//! Mean and standard deviation: one implementation for every capability (bench records,
//! serving latencies). Welford's update, so a long replay needs no sample buffer and the
//! variance does not cancel catastrophically. Perplexity keeps llama-perplexity's sum-based
//! formulas (`perplexity::stats`) because its figures must match that tool's digit for digit.

/// Running count, mean, variance and extremes of a series. Serializable, so a partial series
/// (one shard of a replay) can be stored and [merged](Moments::merge) later.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Moments {
    n: u64,
    sum: f64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl Moments {
    /// The moments of `values`.
    pub fn of(values: &[f64]) -> Self {
        let mut m = Moments::default();
        values.iter().for_each(|&x| m.add(x));
        m
    }

    /// Adds one value.
    pub fn add(&mut self, x: f64) {
        self.n += 1;
        self.sum += x;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
        if self.n == 1 {
            (self.min, self.max) = (x, x);
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
    }

    /// Adds every value of `other`, as if they had been added one by one (Chan et al.'s
    /// pairwise update of the mean and the sum of squared deviations). Count, sum, extremes
    /// and so [`Moments::mean`] are those of the concatenated series (the sum exactly so when
    /// every partial sum is exact, e.g. integer nanoseconds below 2^53); the variance agrees
    /// to rounding.
    pub fn merge(&mut self, other: &Moments) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *other;
            return;
        }
        let n = self.n + other.n;
        let d = other.mean - self.mean;
        let (na, nb) = (self.n as f64, other.n as f64);
        self.mean += d * nb / n as f64;
        self.m2 += other.m2 + d * d * na * nb / n as f64;
        self.n = n;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Values added.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Mean, as the sum over the count (llama-bench's and numpy's arithmetic, to the last bit);
    /// 0 with no values. The running Welford mean serves the variance only.
    pub fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum / self.n as f64
        }
    }

    /// Smallest value; 0 with no values.
    pub fn min(&self) -> f64 {
        self.min
    }

    /// Largest value; 0 with no values.
    pub fn max(&self) -> f64 {
        self.max
    }

    /// Sample standard deviation (divides by n - 1), as llama-bench reports `stddev_ts`; 0 for
    /// fewer than two values.
    pub fn sample_stddev(&self) -> f64 {
        if self.n <= 1 {
            0.0
        } else {
            (self.m2 / (self.n - 1) as f64).sqrt()
        }
    }

    /// Population standard deviation (divides by n), as numpy's `np.std` and so vLLM's
    /// `std_*_ms` fields; 0 with no values.
    pub fn population_stddev(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            (self.m2 / self.n as f64).sqrt()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Moments;

    #[test]
    fn matches_the_textbook_formulas() {
        let v = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let m = Moments::of(&v);
        assert_eq!(m.count(), 8);
        assert_eq!(m.mean(), v.iter().sum::<f64>() / 8.0);
        assert!((m.population_stddev() - 2.0).abs() < 1e-12);
        assert!((m.sample_stddev() - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!((m.min(), m.max()), (2.0, 9.0));
    }

    #[test]
    fn empty_and_single_series_have_zero_spread() {
        assert_eq!(Moments::of(&[]).sample_stddev(), 0.0);
        assert_eq!(Moments::of(&[]).population_stddev(), 0.0);
        let one = Moments::of(&[-3.5]);
        assert_eq!((one.mean(), one.sample_stddev(), one.min(), one.max()), (-3.5, 0.0, -3.5, -3.5));
    }

    #[test]
    fn merging_equals_the_concatenation() {
        let (a, b) = ([3.0, 17.0, 5.0, 1e6, 42.0], [8.0, 1.0, 2e6 + 1.0]);
        let all: Vec<f64> = a.iter().chain(&b).copied().collect();
        let whole = Moments::of(&all);
        let mut merged = Moments::of(&a);
        merged.merge(&Moments::of(&b));
        assert_eq!((merged.count(), merged.mean(), merged.min(), merged.max()), (8, whole.mean(), 1.0, 2e6 + 1.0));
        assert!((merged.population_stddev() / whole.population_stddev() - 1.0).abs() < 1e-12);
        assert!((merged.sample_stddev() / whole.sample_stddev() - 1.0).abs() < 1e-12);
        // Empty sides change nothing.
        let mut empty = Moments::default();
        empty.merge(&whole);
        assert_eq!(empty, whole);
        merged.merge(&Moments::default());
        assert_eq!(merged.count(), 8);
        // The serialized form round-trips exactly.
        let back: Moments = serde_json::from_str(&serde_json::to_string(&merged).unwrap()).unwrap();
        assert_eq!(back, merged);
    }

    #[test]
    fn large_offsets_do_not_cancel() {
        // Naive sum-of-squares loses everything here; Welford keeps it.
        let m = Moments::of(&[1e9 + 4.0, 1e9 + 7.0, 1e9 + 13.0, 1e9 + 16.0]);
        assert!((m.sample_stddev() - 30.0f64.sqrt()).abs() < 1e-6);
    }
}

pub mod compare;
pub use compare::{
    bootstrap_mean_ci, bootstrap_mean_ratio_ci, bootstrap_median_ci, bootstrap_ratio_ci, mann_whitney_p, median,
};
