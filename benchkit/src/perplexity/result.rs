//! What a run returns: per-chunk values, the final perplexity or KL-divergence statistics,
//! timings and provenance.

use super::{Distribution, Estimate, KlBaseHeader, KlRunning, Layout, PerplexityConfig, PplComparison, TextInfo};
use crate::{ModelInfo, Provenance};
use std::path::PathBuf;

/// The parameters a result was measured with.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunInfo {
    /// What was asked.
    pub requested: PerplexityConfig,
    /// The batch layout used.
    pub layout: Layout,
    /// Chunks evaluated.
    pub n_chunk: usize,
    /// Whether each chunk started with BOS.
    pub add_bos: bool,
}

/// Running values after a chunk (perplexity mode).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChunkResult {
    /// Chunk number, from 1 (llama-perplexity's `[N]`).
    pub chunk: usize,
    /// Chunks in the run.
    pub n_chunk: usize,
    /// PPL over all chunks so far.
    pub ppl: f64,
    /// Its uncertainty.
    pub ppl_uncertainty: f64,
    /// PPL of this chunk alone.
    pub chunk_ppl: f64,
    /// Tokens scored so far.
    pub count: usize,
    /// Seconds since the evaluation started.
    pub elapsed_s: f64,
}

/// Running values after a chunk (KL-divergence mode).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KlChunkResult {
    /// Chunk number, from 1.
    pub chunk: usize,
    /// Chunks in the run.
    pub n_chunk: usize,
    /// Running statistics (llama-perplexity's per-chunk table line).
    pub running: KlRunning,
    /// Tokens scored so far.
    pub count: usize,
    /// Seconds since the evaluation started.
    pub elapsed_s: f64,
}

/// Timings of a run.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Timings {
    /// Tokenizing the text (0 for KL mode, whose tokens come from the base file).
    pub tokenize_ms: f64,
    /// Decoding the first batch of chunks (llama-perplexity's "seconds per pass").
    pub seconds_per_pass: f64,
    /// Evaluation, from the first decode to the last score.
    pub total_s: f64,
    /// Evaluated tokens (`n_chunk * n_ctx`) per second of `total_s`.
    pub tokens_per_s: f64,
}

/// Result of [`perplexity`](super::perplexity()) / [`save_kl_base`](super::save_kl_base).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PerplexityResult {
    /// The text.
    pub text: TextInfo,
    /// The model.
    pub model: ModelInfo,
    /// Parameters.
    pub params: RunInfo,
    /// Tokens in the whole text (with BOS if added).
    pub n_tokens: usize,
    /// Tokens evaluated (`n_chunk * n_ctx`).
    pub n_tokens_evaluated: usize,
    /// Tokens scored (`n_chunk * (n_ctx - 1 - n_ctx/2)`).
    pub n_scored: usize,
    /// Final PPL.
    pub ppl: f64,
    /// Its uncertainty.
    pub ppl_uncertainty: f64,
    /// Mean negative log-likelihood (ln PPL).
    pub nll_mean: f64,
    /// Running values after each chunk.
    pub chunks: Vec<ChunkResult>,
    /// The base file written, for [`save_kl_base`](super::save_kl_base).
    pub kl_base: Option<PathBuf>,
    /// Timings.
    pub timings: Timings,
    /// What the process and the machine did during the run (J per token over the evaluated
    /// tokens).
    #[serde(default)]
    pub telemetry: crate::telemetry::Telemetry,
    /// Build, machine, start time, model, dataset and settings.
    pub provenance: Provenance,
}

/// Result of [`kl_divergence`](super::kl_divergence): llama-perplexity's final statistics.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KlDivergenceResult {
    /// The base file.
    pub base: KlBaseHeader,
    /// The evaluated model.
    pub model: ModelInfo,
    /// Parameters.
    pub params: RunInfo,
    /// Tokens scored.
    pub n_scored: usize,
    /// Perplexity statistics.
    pub ppl: PplComparison,
    /// Mean KL divergence.
    pub kld: Estimate,
    /// Distribution of the per-token KL divergence.
    pub kld_distribution: Distribution,
    /// Mean difference in probability of the right token, p(Q) - p(base) (fraction).
    pub p_diff: Estimate,
    /// Distribution of that difference.
    pub p_diff_distribution: Distribution,
    /// RMS of that difference.
    pub p_diff_rms: Estimate,
    /// Fraction of positions where both models rank the same token first.
    pub same_top: Estimate,
    /// Running values after each chunk.
    pub chunks: Vec<KlChunkResult>,
    /// Timings.
    pub timings: Timings,
    /// What the process and the machine did during the run (J per token over the evaluated
    /// tokens).
    #[serde(default)]
    pub telemetry: crate::telemetry::Telemetry,
    /// Build, machine, start time, model, dataset and settings.
    pub provenance: Provenance,
}
