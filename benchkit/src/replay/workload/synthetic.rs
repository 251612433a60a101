//! Synthetic token-level workloads: random prompt tokens with seeded length distributions.

use std::ops::Range;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::WorkloadError;
use crate::replay::Request;

/// A distribution of lengths in tokens.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum LengthDist {
    /// Always this length.
    Fixed(u32),
    /// Uniform over `lo..=hi`.
    Uniform {
        /// Smallest length.
        lo: u32,
        /// Largest length (inclusive).
        hi: u32,
    },
    /// Normal(`mean`, `std`), rounded to the nearest integer and clamped to `min..=max`.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation (0 gives `mean` every time).
        std: f64,
        /// Lower clamp.
        min: u32,
        /// Upper clamp (inclusive).
        max: u32,
    },
}

impl LengthDist {
    /// Smallest and largest length this distribution can produce.
    pub fn bounds(&self) -> (u32, u32) {
        match *self {
            LengthDist::Fixed(n) => (n, n),
            LengthDist::Uniform { lo, hi } => (lo, hi),
            LengthDist::Normal { min, max, .. } => (min, max),
        }
    }

    fn validate(&self, what: &str) -> Result<Option<Normal<f64>>, WorkloadError> {
        let bad = |detail: String| WorkloadError::InvalidConfig { detail: format!("{what}: {detail}") };
        let (lo, hi) = self.bounds();
        if lo == 0 {
            return Err(bad("lengths must be at least 1 token".into()));
        }
        if lo > hi {
            return Err(bad(format!("empty range {lo}..={hi}")));
        }
        match *self {
            LengthDist::Normal { mean, std, .. } => Normal::new(mean, std)
                .ok()
                .filter(|_| mean.is_finite() && std.is_finite())
                .map(Some)
                .ok_or_else(|| bad(format!("invalid normal(mean {mean}, std {std})"))),
            _ => Ok(None),
        }
    }

    fn sample(&self, normal: Option<&Normal<f64>>, rng: &mut ChaCha8Rng) -> u32 {
        match (self, normal) {
            (LengthDist::Fixed(n), _) => *n,
            (LengthDist::Uniform { lo, hi }, _) => rng.random_range(*lo..=*hi),
            (LengthDist::Normal { min, max, .. }, Some(d)) => {
                let x = d.sample(rng).round();
                // Float-to-int casts saturate; clamp does the rest.
                (x.max(0.0) as u64).clamp(u64::from(*min), u64::from(*max)) as u32
            }
            (LengthDist::Normal { min, .. }, None) => *min,
        }
    }
}

/// A synthetic workload.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticConfig {
    /// Requests to generate.
    pub num_requests: usize,
    /// Prompt lengths.
    pub input_len: LengthDist,
    /// Output lengths (tokens to generate).
    pub output_len: LengthDist,
    /// Token ids are drawn uniformly from this range; pass the model's vocabulary minus the
    /// ids to avoid (e.g. `n_special..n_vocab`, or `0..n_vocab`).
    pub token_range: Range<i32>,
    /// Seed (ChaCha8).
    pub seed: u64,
}

/// Generates a synthetic token-level workload.
///
/// Request `i` has `conversation_id = "synthetic-i"`, `turn = 0`, empty `messages`,
/// `prompt_tokens = Some(tokens)` with `prompt_len = tokens.len()`, and an `output_len` drawn
/// from `config.output_len`. Lengths and tokens are drawn from one ChaCha8 stream seeded with
/// `config.seed`, request by request (input length, output length, then the tokens), so the
/// same config always gives the same workload.
///
/// # Errors
///
/// [`WorkloadError::InvalidConfig`] if a length distribution can produce 0 tokens or an empty
/// range, a normal's parameters are not finite (or `std < 0`), or `token_range` is empty or
/// negative.
pub fn synthetic_requests(config: &SyntheticConfig) -> Result<Vec<Request>, WorkloadError> {
    let in_normal = config.input_len.validate("input_len")?;
    let out_normal = config.output_len.validate("output_len")?;
    let tokens = config.token_range.clone();
    if tokens.is_empty() || tokens.start < 0 {
        return Err(WorkloadError::InvalidConfig {
            detail: format!("token_range {tokens:?} must be a non-empty range of ids >= 0"),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut out = Vec::with_capacity(config.num_requests);
    for i in 0..config.num_requests {
        let input_len = config.input_len.sample(in_normal.as_ref(), &mut rng);
        let output_len = config.output_len.sample(out_normal.as_ref(), &mut rng);
        let prompt: Vec<i32> = (0..input_len).map(|_| rng.random_range(tokens.clone())).collect();
        out.push(Request::tokens(i as u64, prompt, output_len).in_conversation(format!("synthetic-{i}"), 0));
    }
    Ok(out)
}
