//! Perplexity and KL-divergence, measured exactly as llama.cpp's `llama-perplexity` does.
//!
//! Methodology (llama-perplexity's default mode):
//! - the whole text is tokenized with special tokens (BOS where the vocabulary adds one) and cut
//!   into chunks of `n_ctx` tokens; at least `2 * n_ctx` tokens are needed;
//! - each chunk is evaluated from a cleared KV cache, its first token replaced by BOS where the
//!   vocabulary adds one; only the second half is scored (positions `n_ctx/2 .. n_ctx-1`, each
//!   predicting the next token);
//! - with `n_batch > n_ctx`, `n_batch / n_ctx` chunks run as parallel sequences of one batch
//!   (`n_batch` must then be a multiple of `n_ctx`); with `n_batch < n_ctx` a chunk takes several
//!   decodes;
//! - PPL = exp(mean NLL); its uncertainty is `PPL * sqrt(var(NLL) / (count - 1))`.
//!
//! [`save_kl_base`] also writes the base model's quantized log-probabilities in
//! llama-perplexity's `--kl-divergence-base` format, and [`kl_divergence`] evaluates another
//! model against such a file (from benchkit or llama-perplexity, in either direction).
//!
//! Log-softmax and scoring of a batch of chunks run on other threads (rayon) while the next
//! batch is decoded; every row is scored sequentially and the sums are taken in token order, so
//! the result does not depend on how many threads score.
//!
//! ```no_run
//! use benchkit::perplexity::{self, PerplexityConfig, Text};
//! use benchkit::{Backend, Model, ModelParams};
//! let backend = Backend::init()?;
//! let model = Model::load(&backend, "model.gguf", &ModelParams::default())?;
//! let text = Text::from_file("wiki.test.raw")?;
//! let params = PerplexityConfig { n_ctx: 512, chunks: Some(20), ..Default::default() };
//! let r = perplexity::perplexity(&model, &text, &params, |c| eprint!("[{}]{:.4},", c.chunk, c.ppl))?;
//! println!("Final estimate: PPL = {:.4} +/- {:.5}", r.ppl, r.ppl_uncertainty);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod error;
mod evaluation;
mod job;
mod klfile;
pub mod report;
mod result;
mod score;
mod stats;
mod text;

pub use config::{Layout, PerplexityConfig};
pub use error::PerplexityError;
pub use evaluation::{kl_divergence, kl_divergence_in, perplexity, perplexity_in, save_kl_base, save_kl_base_in};
pub(crate) use job::run_job;
pub use job::{PerplexityJob, PerplexityOutput, PerplexityProgress, PerplexityTask, SupervisedPerplexityError};
pub use klfile::{record_len, scored_per_chunk, KlBaseHeader, KlBaseWriter, MAGIC};
pub use result::{ChunkResult, KlChunkResult, KlDivergenceResult, PerplexityResult, RunInfo, Timings};
pub use stats::{Distribution, Estimate, KlRunning, PplComparison};
pub use text::{Text, TextInfo};
