//! A run's configuration and the batch layout llama-perplexity derives from it.

use super::PerplexityError;
use crate::{ContextParams, FlashAttn};

/// Parameters of a run. Defaults follow llama-perplexity (`-c 512 -b 2048`, ubatch 512).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PerplexityConfig {
    /// Chunk length in tokens (llama-perplexity `-c`). For [`kl_divergence`](super::kl_divergence) it must equal the
    /// base file's.
    pub n_ctx: u32,
    /// Logical batch (`-b`): with `n_batch > n_ctx`, `n_batch / n_ctx` chunks run in parallel.
    pub n_batch: u32,
    /// Physical batch (`-ub`).
    pub n_ubatch: u32,
    /// Threads for decoding (`-t`).
    pub n_threads: u32,
    /// Evaluate at most this many chunks (`--chunks`); `None` = all.
    pub chunks: Option<usize>,
    /// Flash attention (`-fa`).
    pub flash_attn: FlashAttn,
    /// Threads scoring the logits; 0 = automatic (the CPUs left to spare by the decode threads
    /// when overlapping, else all of them). Does not change the result.
    pub scoring_threads: usize,
    /// Score a batch while the next one decodes (true), or after each decode (false). The
    /// default overlaps only when the machine has more CPUs than `n_threads`: on a machine whose
    /// every core decodes, a concurrent scorer only slows ggml's threads down.
    pub overlap: bool,
}

impl Default for PerplexityConfig {
    fn default() -> Self {
        let n_threads = crate::system::default_threads();
        PerplexityConfig {
            n_ctx: 512,
            n_batch: 2048,
            n_ubatch: 512,
            n_threads: n_threads as u32,
            chunks: None,
            flash_attn: FlashAttn::Auto,
            scoring_threads: 0,
            overlap: crate::system::n_cpus_available() > n_threads,
        }
    }
}

/// How a run cuts the tokens into batches (llama-perplexity's arithmetic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Layout {
    /// Chunk length.
    pub n_ctx: u32,
    /// Tokens per decode (`min(n_batch, n_seq * n_ctx)`).
    pub n_batch: u32,
    /// Chunks decoded together as parallel sequences.
    pub n_seq: u32,
    /// Decodes per chunk.
    pub num_batches: u32,
}

impl PerplexityConfig {
    /// Checks the parameters and derives the batch layout.
    ///
    /// # Errors
    /// [`PerplexityError::InvalidParam`] for `n_ctx < 4`, a zero batch or thread count;
    /// [`PerplexityError::BatchNotMultiple`] for `n_batch > n_ctx` not a multiple of `n_ctx`.
    pub fn layout(&self) -> Result<Layout, PerplexityError> {
        let bad = |name, reason: String| Err(PerplexityError::InvalidParam { name, reason });
        if self.n_ctx < 4 {
            return bad("n_ctx", format!("{} (must be >= 4: half of each chunk is scored)", self.n_ctx));
        }
        if self.n_batch == 0 || self.n_ubatch == 0 {
            return bad("n_batch", "n_batch and n_ubatch must be > 0".into());
        }
        if self.n_threads == 0 {
            return bad("n_threads", "must be > 0".into());
        }
        if self.chunks == Some(0) {
            return bad("chunks", "must be > 0 (None for all)".into());
        }
        if self.n_batch > self.n_ctx && self.n_batch % self.n_ctx != 0 {
            return Err(PerplexityError::BatchNotMultiple {
                n_batch: self.n_batch,
                n_ctx: self.n_ctx,
                suggest: self.n_batch / self.n_ctx * self.n_ctx,
            });
        }
        // More parallel chunks than llama.cpp supports is reported by the context's validation.
        let n_seq = (self.n_batch / self.n_ctx).max(1);
        let n_batch = self.n_batch.min(n_seq * self.n_ctx);
        Ok(Layout { n_ctx: self.n_ctx, n_batch, n_seq, num_batches: self.n_ctx.div_ceil(n_batch) })
    }

    /// The context llama-perplexity creates for these parameters: `n_seq * n_ctx` cells,
    /// `n_seq` sequences, and (as [`ContextParams`]' default) `swa_full = false`.
    ///
    /// # Errors
    /// As [`PerplexityConfig::layout`].
    pub fn context_params(&self) -> Result<ContextParams, PerplexityError> {
        let l = self.layout()?;
        Ok(ContextParams::default()
            .n_ctx(l.n_seq * l.n_ctx)
            .n_batch(l.n_batch)
            .n_ubatch(self.n_ubatch)
            .n_seq_max(l.n_seq)
            .flash_attn(self.flash_attn)
            .threads(self.n_threads))
    }
}
