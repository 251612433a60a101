//! Contexts: KV cache, decoding, logits, threads and performance counters.

use crate::batch::Batch;
use crate::gguf::GgmlType;
use crate::model::Model;
use crate::threadpool::ThreadPool;
use llama_sys as sys;
use std::ptr::NonNull;
use std::sync::Arc;

/// Errors creating a context.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// A parameter is out of range.
    #[error("invalid context parameter {name}: {reason}")]
    InvalidParam {
        /// Parameter name.
        name: &'static str,
        /// The value given and the range it must be in.
        reason: String,
    },
    /// llama.cpp could not create the context (usually out of memory for this n_ctx, or an
    /// unsupported combination such as a quantized V cache without flash attention).
    #[error("llama.cpp could not create a context (n_ctx {n_ctx}, n_batch {n_batch}, type_k {type_k}, type_v {type_v}, flash_attn {flash_attn}): out of memory or unsupported combination (run with RUST_LOG=llama.cpp=debug for its log)")]
    CreateFailed {
        /// Requested context size.
        n_ctx: u32,
        /// Requested batch.
        n_batch: u32,
        /// K cache type.
        type_k: String,
        /// V cache type.
        type_v: String,
        /// Flash attention setting.
        flash_attn: String,
    },
}

/// A sequence id the context does not have (llama.cpp asserts, and aborts, on one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeqError {
    /// Outside `0..n_seq_max` (or not -1 where -1 means every sequence).
    #[error("sequence id {seq} is outside 0..{n_seq_max}{}", if *.any_allowed { " (or -1 for all)" } else { "" })]
    OutOfRange {
        /// The id given.
        seq: i32,
        /// The context's n_seq_max.
        n_seq_max: u32,
        /// Whether -1 (every sequence) was accepted here.
        any_allowed: bool,
    },
}

/// Errors from [`Context::decode`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The batch is empty.
    #[error("cannot decode an empty batch")]
    EmptyBatch,
    /// More tokens than the context's n_batch.
    #[error("batch of {n} tokens exceeds the context's n_batch {n_batch}")]
    BatchTooLarge {
        /// Tokens in the batch.
        n: usize,
        /// The context's logical batch size.
        n_batch: u32,
    },
    /// A token id outside the vocabulary.
    #[error("token {token} at batch index {index} is outside the vocabulary (0..{n_vocab})")]
    TokenOutOfRange {
        /// The token.
        token: i32,
        /// Its index.
        index: usize,
        /// Vocabulary size.
        n_vocab: u32,
    },
    /// A sequence id outside 0..n_seq_max.
    #[error("sequence id {seq} at batch index {index} is outside 0..{n_seq_max}")]
    SeqOutOfRange {
        /// The sequence id.
        seq: i32,
        /// Its index.
        index: usize,
        /// The context's n_seq_max.
        n_seq_max: u32,
    },
    /// No room in the KV cache for the batch (llama_decode returned 1).
    #[error("no KV cache slot for the batch: the context (n_ctx {n_ctx}) is full")]
    NoKvSlot {
        /// Context size.
        n_ctx: u32,
    },
    /// Aborted by the abort callback (2).
    #[error("decode aborted")]
    Aborted,
    /// llama.cpp rejected the batch (-1), e.g. positions out of order.
    #[error("llama.cpp rejected the batch as invalid (code {0}); see its log")]
    InvalidBatch(i32),
    /// Compute failed (< -1).
    #[error("llama_decode failed with code {0}")]
    Failed(i32),
}

/// Flash attention setting (llama-bench `-fa`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum FlashAttn {
    /// llama.cpp decides per device (llama-bench's default).
    #[default]
    Auto,
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

impl FlashAttn {
    fn raw(self) -> sys::llama_flash_attn_type {
        match self {
            FlashAttn::Auto => sys::LLAMA_FLASH_ATTN_TYPE_AUTO,
            FlashAttn::On => sys::LLAMA_FLASH_ATTN_TYPE_ENABLED,
            FlashAttn::Off => sys::LLAMA_FLASH_ATTN_TYPE_DISABLED,
        }
    }

    /// llama-bench's name: `auto`, `on` (1) or `off` (0).
    pub fn name(self) -> &'static str {
        match self {
            FlashAttn::Auto => "auto",
            FlashAttn::On => "on",
            FlashAttn::Off => "off",
        }
    }
    /// Parses `on`/`1`/`true`/`enabled`, `off`/`0`/`false`/`disabled` or `auto`/`-1`:
    /// llama-bench's and llama-perplexity's spellings alike.
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "on" | "1" | "true" | "enabled" => FlashAttn::On,
            "off" | "0" | "false" | "disabled" => FlashAttn::Off,
            "auto" | "-1" => FlashAttn::Auto,
            _ => return None,
        })
    }
}

/// Context parameters (llama-bench's context-level options). Defaults follow llama-bench.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContextParams {
    /// Context size in tokens (must be > 0).
    pub n_ctx: u32,
    /// Logical batch: the most tokens one decode call takes.
    pub n_batch: u32,
    /// Physical batch.
    pub n_ubatch: u32,
    /// Threads for single-token generation.
    pub n_threads: u32,
    /// Threads for batches (prompt processing).
    pub n_threads_batch: u32,
    /// Flash attention.
    pub flash_attn: FlashAttn,
    /// K cache type.
    pub type_k: GgmlType,
    /// V cache type.
    pub type_v: GgmlType,
    /// Keep the KV cache on the host (llama-bench `-nkvo`).
    pub no_kv_offload: bool,
    /// Sequences the context holds.
    pub n_seq_max: u32,
    /// Extract embeddings.
    pub embeddings: bool,
    /// Offload host tensor ops to the device (llama-bench `--no-op-offload` inverts).
    pub op_offload: bool,
    /// One KV buffer shared by all sequences.
    pub kv_unified: bool,
    /// Full-size KV cache for sliding-window-attention layers. `false` (the default here, as
    /// llama-bench, llama-perplexity and llama-server set it) keeps only the window;
    /// `llama_context_default_params` alone would say `true`.
    pub swa_full: bool,
}

impl Default for ContextParams {
    fn default() -> Self {
        let threads = crate::system::default_threads() as u32;
        ContextParams {
            n_ctx: 4096,
            n_batch: 2048,
            n_ubatch: 512,
            n_threads: threads,
            n_threads_batch: threads,
            flash_attn: FlashAttn::Auto,
            type_k: GgmlType::F16,
            type_v: GgmlType::F16,
            no_kv_offload: false,
            n_seq_max: 1,
            embeddings: false,
            op_offload: true,
            kv_unified: false,
            swa_full: false,
        }
    }
}

macro_rules! setter {
    ($($name:ident: $ty:ty),* $(,)?) => {
        impl ContextParams {
            $(
                #[doc = concat!("Sets `", stringify!($name), "`.")]
                pub fn $name(mut self, v: $ty) -> Self {
                    self.$name = v;
                    self
                }
            )*
        }
    };
}
setter!(n_ctx: u32, n_batch: u32, n_ubatch: u32, n_seq_max: u32, flash_attn: FlashAttn, type_k: GgmlType, type_v: GgmlType, no_kv_offload: bool, embeddings: bool, kv_unified: bool, swa_full: bool);

impl ContextParams {
    /// Sets both thread counts.
    pub fn threads(mut self, n: u32) -> Self {
        self.n_threads = n;
        self.n_threads_batch = n;
        self
    }

    /// Checks ranges before llama.cpp sees them.
    ///
    /// # Errors
    /// [`ContextError::InvalidParam`] naming the parameter.
    pub fn validate(&self) -> Result<(), ContextError> {
        let bad = |name, reason: String| Err(ContextError::InvalidParam { name, reason });
        let max_threads = crate::threadpool::MAX_THREADS as u32;
        // SAFETY: pure query.
        let max_seq = unsafe { sys::llama_max_parallel_sequences() } as u32;
        if self.n_ctx == 0 {
            return bad("n_ctx", "must be > 0 (use the model's n_ctx_train for its full context)".into());
        }
        if self.n_batch == 0 {
            return bad("n_batch", "must be > 0".into());
        }
        if self.n_ubatch == 0 {
            return bad("n_ubatch", "must be > 0".into());
        }
        if self.n_threads == 0 || self.n_threads > max_threads {
            return bad("n_threads", format!("{} is outside 1..={max_threads}", self.n_threads));
        }
        if self.n_threads_batch == 0 || self.n_threads_batch > max_threads {
            return bad("n_threads_batch", format!("{} is outside 1..={max_threads}", self.n_threads_batch));
        }
        if self.n_seq_max == 0 || self.n_seq_max > max_seq {
            return bad("n_seq_max", format!("{} is outside 1..={max_seq}", self.n_seq_max));
        }
        if self.n_ctx > i32::MAX as u32 || self.n_batch > i32::MAX as u32 {
            return bad("n_ctx", "too large".into());
        }
        Ok(())
    }
}

/// llama.cpp's performance counters for a context.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct PerfCounters {
    /// Absolute start, ms.
    pub t_start_ms: f64,
    /// Model load time, ms.
    pub t_load_ms: f64,
    /// Prompt (batch) evaluation time, ms.
    pub t_p_eval_ms: f64,
    /// Generation (single-token) evaluation time, ms.
    pub t_eval_ms: f64,
    /// Prompt tokens evaluated.
    pub n_p_eval: i32,
    /// Generated tokens evaluated.
    pub n_eval: i32,
    /// Graph reuses.
    pub n_reused: i32,
}

/// A llama.cpp context on a [`Model`].
#[derive(Debug)]
pub struct Context<'m> {
    ptr: NonNull<sys::llama_context>,
    model: &'m Model,
    params: ContextParams,
    // Kept alive while attached: ggml uses them on every decode.
    threadpools: Option<(Arc<ThreadPool>, Arc<ThreadPool>)>,
}

// SAFETY: a llama_context may be used from any one thread at a time; `&mut self` on every
// mutating call enforces that.
unsafe impl Send for Context<'_> {}

impl<'m> Context<'m> {
    /// Creates a context.
    ///
    /// # Errors
    /// [`ContextError::InvalidParam`] for out-of-range parameters,
    /// [`ContextError::CreateFailed`] when llama.cpp refuses (out of memory, unsupported combo).
    pub fn new(model: &'m Model, params: &ContextParams) -> Result<Self, ContextError> {
        params.validate()?;
        // SAFETY: returns a POD struct by value.
        let mut raw = unsafe { sys::llama_context_default_params() };
        raw.n_ctx = params.n_ctx;
        raw.n_batch = params.n_batch;
        raw.n_ubatch = params.n_ubatch;
        raw.n_seq_max = params.n_seq_max;
        raw.n_threads = params.n_threads as i32;
        raw.n_threads_batch = params.n_threads_batch as i32;
        raw.flash_attn_type = params.flash_attn.raw();
        raw.type_k = params.type_k.id();
        raw.type_v = params.type_v.id();
        raw.offload_kqv = !params.no_kv_offload;
        raw.embeddings = params.embeddings;
        raw.op_offload = params.op_offload;
        raw.kv_unified = params.kv_unified;
        raw.swa_full = params.swa_full;
        raw.no_perf = false;
        // SAFETY: the model pointer is valid for 'm; params are fully initialised.
        let ptr = unsafe { sys::llama_init_from_model(model.as_ptr(), raw) };
        let ptr = NonNull::new(ptr).ok_or_else(|| ContextError::CreateFailed {
            n_ctx: params.n_ctx,
            n_batch: params.n_batch,
            type_k: params.type_k.name().into(),
            type_v: params.type_v.name().into(),
            flash_attn: params.flash_attn.name().into(),
        })?;
        Ok(Context { ptr, model, params: params.clone(), threadpools: None })
    }

    /// The model.
    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// Parameters it was created with.
    pub fn params(&self) -> &ContextParams {
        &self.params
    }

    /// Actual context size (llama.cpp may round it).
    pub fn n_ctx(&self) -> u32 {
        // SAFETY: valid context.
        unsafe { sys::llama_n_ctx(self.ptr.as_ptr()) }
    }

    /// Context available to each sequence (n_ctx / n_seq_max unless the KV cache is unified).
    pub fn n_ctx_seq(&self) -> u32 {
        // SAFETY: valid context.
        unsafe { sys::llama_n_ctx_seq(self.ptr.as_ptr()) }
    }

    /// Actual logical batch size.
    pub fn n_batch(&self) -> u32 {
        // SAFETY: valid context.
        unsafe { sys::llama_n_batch(self.ptr.as_ptr()) }
    }

    /// Actual physical batch size.
    pub fn n_ubatch(&self) -> u32 {
        // SAFETY: valid context.
        unsafe { sys::llama_n_ubatch(self.ptr.as_ptr()) }
    }

    /// Sequences this context holds.
    pub fn n_seq_max(&self) -> u32 {
        // SAFETY: valid context.
        unsafe { sys::llama_n_seq_max(self.ptr.as_ptr()) }
    }

    /// Decodes a batch.
    ///
    /// # Errors
    /// See [`DecodeError`]; the batch is checked against the vocabulary, n_batch and n_seq_max
    /// first so llama.cpp never sees an invalid one.
    pub fn decode(&mut self, batch: &Batch) -> Result<(), DecodeError> {
        if batch.is_empty() {
            return Err(DecodeError::EmptyBatch);
        }
        let n_batch = self.n_batch();
        if batch.len() > n_batch as usize {
            return Err(DecodeError::BatchTooLarge { n: batch.len(), n_batch });
        }
        let n_vocab = self.model.info().n_vocab;
        if let Some((index, &token)) = batch.tokens().iter().enumerate().find(|(_, &t)| t < 0 || t as u32 >= n_vocab) {
            return Err(DecodeError::TokenOutOfRange { token, index, n_vocab });
        }
        let n_seq_max = self.n_seq_max();
        for index in 0..batch.len() {
            if let Some(&seq) = batch.seq_ids(index).iter().find(|&&s| s < 0 || s as u32 >= n_seq_max) {
                return Err(DecodeError::SeqOutOfRange { seq, index, n_seq_max });
            }
        }
        // SAFETY: valid context; the batch was validated above and outlives the call.
        let rc = unsafe { sys::llama_decode(self.ptr.as_ptr(), batch.raw()) };
        match rc {
            0 => Ok(()),
            1 => Err(DecodeError::NoKvSlot { n_ctx: self.n_ctx() }),
            2 => Err(DecodeError::Aborted),
            -1 => Err(DecodeError::InvalidBatch(rc)),
            _ => Err(DecodeError::Failed(rc)),
        }
    }

    /// Logits of the `i`-th output of the last decode (negative counts from the end), or `None`
    /// if that token did not request logits.
    pub fn logits_ith(&self, i: i32) -> Option<&[f32]> {
        // SAFETY: valid context; llama.cpp returns null (and logs) for an invalid index.
        let p = unsafe { sys::llama_get_logits_ith(self.ptr.as_ptr(), i) };
        if p.is_null() {
            return None;
        }
        // SAFETY: a non-null row holds n_vocab floats, valid until the next decode (&self borrow).
        Some(unsafe { std::slice::from_raw_parts(p, self.model.info().n_vocab as usize) })
    }

    /// Waits for pending device work.
    pub fn synchronize(&mut self) {
        // SAFETY: valid context.
        unsafe { sys::llama_synchronize(self.ptr.as_ptr()) }
    }

    /// Clears the KV cache (memory), and its data too if `data`.
    pub fn memory_clear(&mut self, data: bool) {
        // SAFETY: valid context; the memory handle belongs to it.
        unsafe { sys::llama_memory_clear(sys::llama_get_memory(self.ptr.as_ptr()), data) }
    }

    fn check_seq(&self, seq: i32, any_allowed: bool) -> Result<(), SeqError> {
        let n_seq_max = self.n_seq_max();
        if (seq >= 0 && (seq as u32) < n_seq_max) || (any_allowed && seq == -1) {
            Ok(())
        } else {
            Err(SeqError::OutOfRange { seq, n_seq_max, any_allowed })
        }
    }

    /// Removes positions `p0..p1` of sequence `seq` (-1 = all sequences; negative p0/p1 = open
    /// ends). `Ok(false)` when llama.cpp could not remove a partial range.
    ///
    /// # Errors
    /// [`SeqError::OutOfRange`] for a sequence the context does not have.
    pub fn memory_seq_rm(&mut self, seq: i32, p0: i32, p1: i32) -> Result<bool, SeqError> {
        self.check_seq(seq, true)?;
        // SAFETY: valid context; `seq` was checked above (llama.cpp asserts on a bad one).
        Ok(unsafe { sys::llama_memory_seq_rm(sys::llama_get_memory(self.ptr.as_ptr()), seq, p0, p1) })
    }

    /// Largest position stored for sequence `seq` (-1 when empty).
    ///
    /// # Errors
    /// [`SeqError::OutOfRange`] for a sequence the context does not have.
    pub fn seq_pos_max(&self, seq: i32) -> Result<i32, SeqError> {
        self.check_seq(seq, false)?;
        // SAFETY: valid context; `seq` was checked above.
        Ok(unsafe { sys::llama_memory_seq_pos_max(sys::llama_get_memory(self.ptr.as_ptr()), seq) })
    }

    /// Serialized state (KV cache) of sequence `seq`.
    ///
    /// # Errors
    /// [`SeqError::OutOfRange`] for a sequence the context does not have.
    pub fn seq_state(&mut self, seq: i32) -> Result<Vec<u8>, SeqError> {
        self.check_seq(seq, false)?;
        // SAFETY: valid context and checked `seq`; the buffer is sized by llama_state_seq_get_size.
        unsafe {
            let size = sys::llama_state_seq_get_size(self.ptr.as_ptr(), seq);
            let mut buf = vec![0u8; size];
            let n = sys::llama_state_seq_get_data(self.ptr.as_ptr(), buf.as_mut_ptr(), buf.len(), seq);
            buf.truncate(n);
            Ok(buf)
        }
    }

    /// Restores a state saved by [`Context::seq_state`] into `seq`; `Ok(false)` if incompatible.
    ///
    /// # Errors
    /// [`SeqError::OutOfRange`] for a sequence the context does not have.
    pub fn set_seq_state(&mut self, state: &[u8], seq: i32) -> Result<bool, SeqError> {
        self.check_seq(seq, false)?;
        // SAFETY: valid context and checked `seq`; llama.cpp reads at most state.len() bytes and
        // validates them.
        Ok(unsafe { sys::llama_state_seq_set_data(self.ptr.as_ptr(), state.as_ptr(), state.len(), seq) != 0 })
    }

    /// Sets thread counts for generation and batches.
    pub fn set_n_threads(&mut self, n_threads: u32, n_threads_batch: u32) {
        self.params.n_threads = n_threads.max(1);
        self.params.n_threads_batch = n_threads_batch.max(1);
        // SAFETY: valid context.
        unsafe { sys::llama_set_n_threads(self.ptr.as_ptr(), n_threads.max(1) as i32, n_threads_batch.max(1) as i32) }
    }

    /// Attaches CPU threadpools for generation and batches (the same pool may serve both).
    pub fn attach_threadpool(&mut self, pool: Arc<ThreadPool>, pool_batch: Option<Arc<ThreadPool>>) {
        let pool_batch = pool_batch.unwrap_or_else(|| pool.clone());
        // SAFETY: valid context; the Arcs stored below keep both pools alive while attached.
        unsafe { sys::llama_attach_threadpool(self.ptr.as_ptr(), pool.as_ptr(), pool_batch.as_ptr()) };
        self.threadpools = Some((pool, pool_batch));
    }

    /// Detaches threadpools (llama.cpp falls back to its own).
    pub fn detach_threadpool(&mut self) {
        if self.threadpools.take().is_some() {
            // SAFETY: valid context.
            unsafe { sys::llama_detach_threadpool(self.ptr.as_ptr()) };
        }
    }

    /// llama.cpp's performance counters.
    pub fn perf(&self) -> PerfCounters {
        // SAFETY: valid context; returns a POD by value.
        let d = unsafe { sys::llama_perf_context(self.ptr.as_ptr()) };
        PerfCounters {
            t_start_ms: d.t_start_ms,
            t_load_ms: d.t_load_ms,
            t_p_eval_ms: d.t_p_eval_ms,
            t_eval_ms: d.t_eval_ms,
            n_p_eval: d.n_p_eval,
            n_eval: d.n_eval,
            n_reused: d.n_reused,
        }
    }

    /// Resets the performance counters.
    pub fn perf_reset(&mut self) {
        // SAFETY: valid context.
        unsafe { sys::llama_perf_context_reset(self.ptr.as_ptr()) }
    }

    /// The raw pointer, for calls the safe layer does not wrap.
    pub fn as_ptr(&self) -> *mut sys::llama_context {
        self.ptr.as_ptr()
    }
}

impl Drop for Context<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the context; threadpools (if any) are still alive in `self`.
        unsafe { sys::llama_free(self.ptr.as_ptr()) };
    }
}
