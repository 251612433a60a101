//! The errors of perplexity and KL-divergence runs.

use crate::{BatchError, ContextError, DecodeError};
use std::path::PathBuf;

/// Errors from perplexity and KL-divergence runs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PerplexityError {
    /// The model could not be loaded.
    #[error(transparent)]
    Model(#[from] crate::ModelError),
    /// The text could not be tokenized.
    #[error(transparent)]
    Tokenize(#[from] crate::TokenizeError),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The text is not UTF-8.
    #[error("{name} is not UTF-8 text (invalid byte sequence at byte {valid_up_to}); convert it to UTF-8 first")]
    NotUtf8 {
        /// File or text name.
        name: String,
        /// Bytes before the first invalid sequence.
        valid_up_to: usize,
    },
    /// The text is empty.
    #[error("{name} is empty: perplexity needs a text of at least 2 x n_ctx tokens")]
    EmptyText {
        /// File or text name.
        name: String,
    },
    /// The text has fewer than `2 * n_ctx` tokens (llama-perplexity's requirement).
    #[error("the text tokenizes to only {n_tokens} tokens; a context of {n_ctx} needs at least {needed} (2 x n_ctx): use a longer text or a smaller n_ctx (-c)")]
    TooFewTokens {
        /// Tokens in the text.
        n_tokens: usize,
        /// Tokens needed.
        needed: usize,
        /// Chunk length.
        n_ctx: u32,
    },
    /// `n_batch` is larger than `n_ctx` but not a multiple of it.
    #[error("n_batch {n_batch} is larger than n_ctx {n_ctx} but not a multiple of it: use a multiple of n_ctx (e.g. {suggest}) or at most n_ctx")]
    BatchNotMultiple {
        /// The batch size.
        n_batch: u32,
        /// The chunk length.
        n_ctx: u32,
        /// The nearest lower multiple (or n_ctx).
        suggest: u32,
    },
    /// The model's vocabulary appends EOS to tokenized text, so the text's last scored
    /// position would predict an EOS that is not in the text; llama-perplexity refuses such
    /// models too (it asserts).
    #[error("the model's vocabulary appends EOS when tokenizing (tokenizer.ggml.add_eos_token): llama-perplexity's method does not apply to it")]
    VocabAddsEos,
    /// A parameter is out of range.
    #[error("invalid perplexity parameter {name}: {reason}")]
    InvalidParam {
        /// Parameter name.
        name: &'static str,
        /// The value given and the range it must be in.
        reason: String,
    },
    /// A context given to a `*_in` function is too small for the run.
    #[error("the context's {what} is {have}, this run needs {need}: create it with the parameters from PerplexityConfig::context_params")]
    ContextTooSmall {
        /// Which limit.
        what: &'static str,
        /// What the context has.
        have: u32,
        /// What the run needs.
        need: u32,
    },
    /// The context could not be created.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// A decode failed.
    #[error("decode failed: {0}")]
    Decode(#[from] DecodeError),
    /// A batch could not be filled (internal sizing error).
    #[error("batch: {0}")]
    Batch(#[from] BatchError),
    /// llama.cpp returned no logits for a token that requested them.
    #[error("llama.cpp returned no logits for batch index {index}")]
    MissingLogits {
        /// Index in the batch.
        index: usize,
    },
    /// The file does not start with llama-perplexity's `_logits_` magic.
    #[error("{} is not a KL-divergence base file (no `_logits_` magic): write one with --kl-divergence-base and no --kl-divergence", path.display())]
    NotAKlBase {
        /// The file.
        path: PathBuf,
    },
    /// The base file is shorter than its header says.
    #[error("KL-divergence base file {} is truncated: {actual_bytes} bytes, its header needs {expected_bytes}; write it again", path.display())]
    KlTruncated {
        /// The file.
        path: PathBuf,
        /// Size its header describes.
        expected_bytes: u64,
        /// Its size.
        actual_bytes: u64,
    },
    /// The base file's header or tokens are impossible.
    #[error("KL-divergence base file {} is invalid: {reason}", path.display())]
    KlInvalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The base file was written with another vocabulary.
    #[error("KL-divergence base file {} was written with a vocabulary of {file} tokens, this model has {model}: compare models that share a vocabulary", path.display())]
    KlVocabMismatch {
        /// The file.
        path: PathBuf,
        /// The file's n_vocab.
        file: u32,
        /// The model's n_vocab.
        model: u32,
    },
    /// The base file was written with another chunk length.
    #[error("KL-divergence base file {} was written with n_ctx {file}, this run asks for {requested}: use -c {file}", path.display())]
    KlContextMismatch {
        /// The file.
        path: PathBuf,
        /// The file's n_ctx.
        file: u32,
        /// The requested n_ctx.
        requested: u32,
    },
    /// A scoring thread panicked.
    #[error("a scoring thread panicked")]
    ScorerPanicked,
}
