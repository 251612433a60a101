//! Loading a model and reading its metadata.

mod fit;
mod options;
mod raw;

pub use options::{buffer_type_names, n_cpu_moe_patterns, DeviceSelection, LazyMode, LoadMode, TensorBuftOverride};

use crate::backend::Backend;
use crate::context::{Context, ContextError, ContextParams};
use crate::gguf::{GgufError, GgufFile};
use crate::util::{cstr_to_string, read_c_buf};
use llama_sys as sys;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

/// Errors tokenizing text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenizeError {
    /// llama.cpp takes the text's length as an `int32_t`.
    #[error("text of {bytes} bytes is too long to tokenize at once (llama.cpp takes at most {max} bytes)")]
    TooLong {
        /// The text's length.
        bytes: usize,
        /// The most llama.cpp accepts.
        max: usize,
    },
}

/// Errors loading a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The file is not a valid GGUF (missing, a directory, empty, truncated, corrupt, not GGUF).
    #[error(transparent)]
    InvalidFile(#[from] GgufError),
    /// The path cannot be passed to C (contains a NUL byte).
    #[error("model path {0:?} contains a NUL byte")]
    BadPath(PathBuf),
    /// A parameter is out of range.
    #[error("invalid model parameter {name}: {reason}")]
    InvalidParam {
        /// Parameter name.
        name: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// A device named in `devices` does not exist.
    #[error("no device named {name:?}; available: {available:?}")]
    NoSuchDevice {
        /// Requested name.
        name: String,
        /// Devices this build has.
        available: Vec<String>,
    },
    /// A tensor override names a buffer type no registered device has.
    #[error("no buffer type named {name:?}; available: {available:?}")]
    NoSuchBufferType {
        /// Requested name.
        name: String,
        /// Buffer types this build's devices have.
        available: Vec<String>,
    },
    /// `fit_target_mib` / `fit_min_ctx` were set for a model with offload devices: fitting to
    /// their free memory is llama.cpp's `common_fit_params`, which this build does not link.
    #[error("--fit-target/--fit-ctx would fit the model to the free memory of {devices:?}: llama.cpp does that in its common library (common_fit_params), which benchkit does not link; set -ngl, -ts, -ot or -ncmoe instead")]
    FitUnavailable {
        /// The offload devices the model would use.
        devices: Vec<String>,
    },
    /// llama.cpp refused the file (unsupported architecture, missing tensors, out of memory...).
    #[error("llama.cpp failed to load {path}: {hint} (run with RUST_LOG=llama.cpp=debug for its log)")]
    LoadFailed {
        /// The model path.
        path: PathBuf,
        /// What benchkit knows about the file.
        hint: String,
    },
}

/// How layers and KV are split across several GPUs (llama-bench `-sm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SplitMode {
    /// Single GPU (`main_gpu`).
    None,
    /// Split layers and KV across GPUs.
    #[default]
    Layer,
    /// Split rows (tensor parallelism where supported).
    Row,
    /// Tensor split.
    Tensor,
}

impl SplitMode {
    /// llama-bench's name: `none`, `layer`, `row`, `tensor`.
    pub fn name(self) -> &'static str {
        match self {
            SplitMode::None => "none",
            SplitMode::Layer => "layer",
            SplitMode::Row => "row",
            SplitMode::Tensor => "tensor",
        }
    }

    /// Parses llama-bench's name.
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "none" => SplitMode::None,
            "layer" => SplitMode::Layer,
            "row" => SplitMode::Row,
            "tensor" => SplitMode::Tensor,
            _ => return None,
        })
    }

    fn raw(self) -> sys::llama_split_mode {
        match self {
            SplitMode::None => sys::LLAMA_SPLIT_MODE_NONE,
            SplitMode::Layer => sys::LLAMA_SPLIT_MODE_LAYER,
            SplitMode::Row => sys::LLAMA_SPLIT_MODE_ROW,
            SplitMode::Tensor => sys::LLAMA_SPLIT_MODE_TENSOR,
        }
    }
}

/// Model loading parameters (llama-bench's model-level options). A sweep loads a new model
/// whenever any of them changes, as llama-bench does.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelParams {
    /// Layers to offload to GPU; negative = all (llama-bench `-ngl`, default -1).
    pub n_gpu_layers: i32,
    /// Keep the expert (MoE) tensors of the first this many layers on the CPU (llama-bench
    /// `-ncmoe`, default 0): overrides added after `tensor_buft_overrides`.
    pub n_cpu_moe: u32,
    /// Split mode across GPUs.
    pub split_mode: SplitMode,
    /// GPU used with [`SplitMode::None`].
    pub main_gpu: i32,
    /// Fraction of the model per device; empty = automatic.
    pub tensor_split: Vec<f32>,
    /// Offload devices (llama-bench `-dev`, default `auto`).
    pub devices: DeviceSelection,
    /// Tensor buffer-type overrides, first match wins (llama-bench `-ot`, default none).
    pub tensor_buft_overrides: Vec<TensorBuftOverride>,
    /// How the weights are read (llama-bench `-lm`, default `auto`).
    pub load_mode: LoadMode,
    /// On-demand tensor reading (llama-bench `-lzm`, default `auto`).
    pub lazy_mode: LazyMode,
    /// Bypass the host buffer so extra buffer types can be used (llama-bench `--no-host`).
    pub no_host: bool,
    /// Let the CPU backend repack weights into its extra buffer types (llama.cpp's
    /// `use_extra_bufts`, llama-bench `--repack`; default on).
    pub repack: bool,
    /// Fit the model to free device memory leaving this many MiB per device; 0 = no fit
    /// unless `fit_min_ctx` is set (llama-bench `-fitt`). See [`ModelError::FitUnavailable`].
    pub fit_target_mib: u64,
    /// Smallest context the fit may choose; 0 = no fit unless `fit_target_mib` is set
    /// (llama-bench `-fitc`).
    pub fit_min_ctx: u32,
}

impl Default for ModelParams {
    fn default() -> Self {
        // SAFETY: returns a POD struct by value.
        let llama = unsafe { sys::llama_model_default_params() };
        ModelParams {
            n_gpu_layers: -1,
            n_cpu_moe: 0,
            split_mode: SplitMode::Layer,
            main_gpu: 0,
            tensor_split: Vec::new(),
            devices: DeviceSelection::Auto,
            tensor_buft_overrides: Vec::new(),
            load_mode: LoadMode::Auto,
            lazy_mode: LazyMode::Auto,
            no_host: llama.no_host,
            repack: llama.use_extra_bufts,
            fit_target_mib: 0,
            fit_min_ctx: 0,
        }
    }
}

impl ModelParams {
    /// Sets `n_gpu_layers`.
    pub fn n_gpu_layers(mut self, n: i32) -> Self {
        self.n_gpu_layers = n;
        self
    }
    /// Memory-map the file (`load_mode` `mmap`) or read it into buffers (`none`).
    pub fn use_mmap(mut self, on: bool) -> Self {
        self.load_mode = if on { LoadMode::Mmap } else { LoadMode::None };
        self
    }
    /// Whether llama-bench would fit this point to free memory (either fit value set).
    pub fn fit_requested(&self) -> bool {
        self.fit_target_mib != 0 || self.fit_min_ctx != 0
    }
}

/// Metadata of a loaded model, as llama-bench reports it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelInfo {
    /// The file path.
    pub path: PathBuf,
    /// llama.cpp's description, e.g. `gemma3 270M Q4_K - Medium` (llama-bench `model_type`).
    pub description: String,
    /// `general.architecture`.
    pub architecture: String,
    /// `general.name`, when present.
    pub name: Option<String>,
    /// Size of the weights in bytes (llama-bench `model_size`).
    pub size_bytes: u64,
    /// File size on disk.
    pub file_bytes: u64,
    /// Parameter count (llama-bench `model_n_params`).
    pub n_params: u64,
    /// File type name, e.g. `Q4_K - Medium`.
    pub file_type: String,
    /// Training context length.
    pub n_ctx_train: u32,
    /// Embedding width.
    pub n_embd: u32,
    /// Transformer blocks (`n_layer`).
    pub n_layer: u32,
    /// Attention heads.
    pub n_head: u32,
    /// KV heads.
    pub n_head_kv: u32,
    /// Vocabulary size.
    pub n_vocab: u32,
}

/// A loaded model. Contexts borrow it, so it outlives them.
#[derive(Debug)]
pub struct Model {
    ptr: NonNull<sys::llama_model>,
    info: ModelInfo,
    params: ModelParams,
}

// SAFETY: llama.cpp models are immutable after loading and documented as shareable between
// contexts on different threads.
unsafe impl Send for Model {}
// SAFETY: see above; all &self methods only read.
unsafe impl Sync for Model {}

impl Model {
    /// Validates the file, then loads it with llama.cpp.
    ///
    /// # Errors
    /// [`ModelError::InvalidFile`] for anything wrong with the file itself (checked in Rust first,
    /// because llama.cpp aborts on some malformed files), [`ModelError::InvalidParam`] /
    /// [`ModelError::NoSuchDevice`] / [`ModelError::NoSuchBufferType`] for bad parameters,
    /// [`ModelError::FitUnavailable`] for a fit this build cannot do, [`ModelError::LoadFailed`]
    /// when llama.cpp refuses it (also for an override pattern its regex engine rejects).
    pub fn load(_backend: &Backend, path: impl AsRef<Path>, params: &ModelParams) -> Result<Self, ModelError> {
        let path = path.as_ref().to_path_buf();
        let gguf = GgufFile::open(&path)?;
        let c_path =
            CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| ModelError::BadPath(path.clone()))?;

        let effective = fit::apply(params)?;
        let raw = raw::RawModelParams::new(&effective)?;
        // SAFETY: `c_path` is NUL-terminated; `raw` owns every array and string `raw.raw` points
        // to and outlives the call; devices and buffer types were looked up in the registry and
        // the file passed Rust-side validation of its header, metadata and tensor table.
        let ptr = unsafe { sys::llama_model_load_from_file(c_path.as_ptr(), raw.raw) };
        let ptr = NonNull::new(ptr).ok_or_else(|| ModelError::LoadFailed {
            path: path.clone(),
            hint: format!(
                "architecture {:?}, {} tensors, {} metadata keys{}",
                gguf.architecture().unwrap_or("<none>"),
                gguf.tensors.len(),
                gguf.metadata.len(),
                if effective.tensor_buft_overrides.is_empty() {
                    String::new()
                } else {
                    // An override pattern llama.cpp's std::regex rejects fails the load too.
                    format!("; tensor overrides {}", TensorBuftOverride::list_name(&effective.tensor_buft_overrides))
                }
            ),
        })?;
        let info = read_info(ptr, &path, &gguf);
        Ok(Model { ptr, info, params: params.clone() })
    }

    /// The model's metadata, read once at load: architecture, sizes, vocabulary, description.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Parameters it was loaded with.
    pub fn params(&self) -> &ModelParams {
        &self.params
    }

    /// A metadata value as a string (any GGUF key), as llama.cpp sees it.
    pub fn meta(&self, key: &str) -> Option<String> {
        let key = CString::new(key).ok()?;
        // SAFETY: valid model, key NUL-terminated, buffer sized by read_c_buf.
        read_c_buf(|buf, len| unsafe { sys::llama_model_meta_val_str(self.ptr.as_ptr(), key.as_ptr(), buf, len) })
    }

    /// Creates a context on this model.
    ///
    /// # Errors
    /// See [`Context::new`].
    pub fn new_context(&self, params: &ContextParams) -> Result<Context<'_>, ContextError> {
        Context::new(self, params)
    }

    /// Whether llama.cpp adds BOS when tokenizing with special tokens.
    pub fn add_bos(&self) -> bool {
        // SAFETY: vocab belongs to the live model.
        unsafe { sys::llama_vocab_get_add_bos(self.vocab()) }
    }

    /// Whether llama.cpp appends EOS when tokenizing with special tokens.
    pub fn add_eos(&self) -> bool {
        // SAFETY: vocab belongs to the live model.
        unsafe { sys::llama_vocab_get_add_eos(self.vocab()) }
    }

    /// BOS token id.
    pub fn token_bos(&self) -> crate::Token {
        // SAFETY: vocab belongs to the live model.
        unsafe { sys::llama_vocab_bos(self.vocab()) }
    }

    /// Tokenizes `text` (with BOS if `add_special` and the vocab adds one).
    ///
    /// # Errors
    /// [`TokenizeError::TooLong`] past `i32::MAX` bytes, which llama.cpp's `int32_t` length
    /// cannot express (a cast would wrap and hand it a negative or short length).
    pub fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<crate::Token>, TokenizeError> {
        let max = i32::MAX as usize;
        let len = i32::try_from(text.len()).map_err(|_| TokenizeError::TooLong { bytes: text.len(), max })?;
        // At most one token per byte plus BOS/EOS; capped where the count itself would not fit.
        let mut out = vec![0i32; (text.len() + 2).min(max)];
        loop {
            // SAFETY: text pointer/len describe a valid byte slice (len checked to fit i32); out
            // has out.len() <= i32::MAX slots.
            let n = unsafe {
                sys::llama_tokenize(
                    self.vocab(),
                    text.as_ptr().cast(),
                    len,
                    out.as_mut_ptr(),
                    out.len() as i32,
                    add_special,
                    false,
                )
            };
            if n >= 0 {
                out.truncate(n as usize);
                return Ok(out);
            }
            out.resize(n.unsigned_abs() as usize, 0);
        }
    }

    /// The text of a token (lossy UTF-8 for partial byte tokens).
    pub fn token_to_piece(&self, token: crate::Token) -> String {
        let mut buf = vec![0u8; 64];
        loop {
            // SAFETY: vocab is valid; buf has buf.len() bytes of room.
            let n = unsafe {
                sys::llama_token_to_piece(self.vocab(), token, buf.as_mut_ptr().cast(), buf.len() as i32, 0, false)
            };
            if n >= 0 {
                buf.truncate(n as usize);
                return String::from_utf8_lossy(&buf).into_owned();
            }
            buf.resize((-n) as usize, 0);
        }
    }

    /// Whether `token` ends generation (EOS, EOT, ...).
    pub fn is_eog(&self, token: crate::Token) -> bool {
        // SAFETY: vocab is valid; llama.cpp range-checks the token.
        unsafe { sys::llama_vocab_is_eog(self.vocab(), token) }
    }

    pub(crate) fn vocab(&self) -> *const sys::llama_vocab {
        // SAFETY: valid model pointer; the vocab lives as long as the model.
        unsafe { sys::llama_model_get_vocab(self.ptr.as_ptr()) }
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::llama_model {
        self.ptr.as_ptr()
    }
}

fn read_info(ptr: NonNull<sys::llama_model>, path: &Path, gguf: &GgufFile) -> ModelInfo {
    let m = ptr.as_ptr();
    // SAFETY: `m` is a valid, fully loaded model; all calls are read-only queries and the
    // buffers are sized by read_c_buf.
    unsafe {
        let vocab = sys::llama_model_get_vocab(m);
        ModelInfo {
            path: path.to_path_buf(),
            description: read_c_buf(|b, l| sys::llama_model_desc(m, b, l)).unwrap_or_default(),
            architecture: gguf.architecture().unwrap_or_default().to_string(),
            name: gguf.get_str("general.name").map(str::to_string),
            size_bytes: sys::llama_model_size(m),
            file_bytes: gguf.file_size,
            n_params: sys::llama_model_n_params(m),
            file_type: cstr_to_string(sys::llama_ftype_name(sys::llama_model_ftype(m))),
            n_ctx_train: sys::llama_model_n_ctx_train(m).max(0) as u32,
            n_embd: sys::llama_model_n_embd(m).max(0) as u32,
            n_layer: sys::llama_model_n_layer(m).max(0) as u32,
            n_head: sys::llama_model_n_head(m).max(0) as u32,
            n_head_kv: sys::llama_model_n_head_kv(m).max(0) as u32,
            n_vocab: sys::llama_vocab_n_tokens(vocab).max(0) as u32,
        }
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: we own the model; every Context borrowing it has been dropped (lifetime 'm).
        unsafe { sys::llama_model_free(self.ptr.as_ptr()) };
    }
}
