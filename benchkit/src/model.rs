//! Loading a model and reading its metadata.

use crate::backend::Backend;
use crate::context::{Context, ContextError, ContextParams};
use crate::gguf::{GgufError, GgufFile};
use crate::util::{cstr_to_string, read_c_buf};
use llama_sys as sys;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

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

/// Model loading parameters (llama-bench's model-level options).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelParams {
    /// Layers to offload to GPU; negative = all (llama-bench `-ngl`, default -1).
    pub n_gpu_layers: i32,
    /// Split mode across GPUs.
    pub split_mode: SplitMode,
    /// GPU used with [`SplitMode::None`].
    pub main_gpu: i32,
    /// Fraction of the model per device; empty = automatic.
    pub tensor_split: Vec<f32>,
    /// Device names to use (`CUDA0`, ...); empty = all.
    pub devices: Vec<String>,
    /// Memory-map the file; `None` lets llama.cpp decide (llama-bench's default).
    pub use_mmap: Option<bool>,
    /// Lock the model in RAM.
    pub use_mlock: bool,
}

impl Default for ModelParams {
    fn default() -> Self {
        ModelParams {
            n_gpu_layers: -1,
            split_mode: SplitMode::Layer,
            main_gpu: 0,
            tensor_split: Vec::new(),
            devices: Vec::new(),
            use_mmap: None,
            use_mlock: false,
        }
    }
}

impl ModelParams {
    /// Sets `n_gpu_layers`.
    pub fn n_gpu_layers(mut self, n: i32) -> Self {
        self.n_gpu_layers = n;
        self
    }
    /// Sets `use_mmap`.
    pub fn use_mmap(mut self, on: bool) -> Self {
        self.use_mmap = Some(on);
        self
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
    /// Layers.
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
    /// [`ModelError::NoSuchDevice`] for bad parameters, [`ModelError::LoadFailed`] when llama.cpp
    /// refuses it.
    pub fn load(_backend: &Backend, path: impl AsRef<Path>, params: &ModelParams) -> Result<Self, ModelError> {
        let path = path.as_ref().to_path_buf();
        let gguf = GgufFile::open(&path)?;
        let c_path = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| ModelError::BadPath(path.clone()))?;

        let all_devices = crate::devices::raw_devices();
        let dev_info = crate::devices::list();
        let mut devices: Vec<sys::ggml_backend_dev_t> = Vec::new();
        for name in &params.devices {
            let idx = dev_info.iter().position(|d| d.name.eq_ignore_ascii_case(name)).ok_or_else(|| {
                ModelError::NoSuchDevice { name: name.clone(), available: dev_info.iter().map(|d| d.name.clone()).collect() }
            })?;
            devices.push(all_devices[idx]);
        }
        devices.push(std::ptr::null_mut());

        // SAFETY: pure query.
        let max_devices = unsafe { sys::llama_max_devices() };
        if params.tensor_split.len() > max_devices {
            return Err(ModelError::InvalidParam {
                name: "tensor_split",
                reason: format!("{} entries, this build supports at most {max_devices}", params.tensor_split.len()),
            });
        }
        if params.tensor_split.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(ModelError::InvalidParam { name: "tensor_split", reason: "entries must be finite and >= 0".into() });
        }
        let mut split = vec![0f32; max_devices.max(1)];
        split[..params.tensor_split.len()].copy_from_slice(&params.tensor_split);
        if params.main_gpu < 0 {
            return Err(ModelError::InvalidParam { name: "main_gpu", reason: format!("{} < 0", params.main_gpu) });
        }

        // SAFETY: returns a POD struct by value.
        let mut raw = unsafe { sys::llama_model_default_params() };
        raw.n_gpu_layers = params.n_gpu_layers;
        raw.split_mode = params.split_mode.raw();
        raw.main_gpu = params.main_gpu;
        raw.tensor_split = split.as_ptr();
        if !params.devices.is_empty() {
            raw.devices = devices.as_mut_ptr();
        }
        raw.load_mode = match (params.use_mmap, params.use_mlock) {
            (None, false) => sys::LLAMA_LOAD_MODE_AUTO,
            (Some(true), false) => sys::LLAMA_LOAD_MODE_MMAP,
            (Some(false), false) => sys::LLAMA_LOAD_MODE_NONE,
            (Some(false), true) => sys::LLAMA_LOAD_MODE_MLOCK,
            (None | Some(true), true) => sys::LLAMA_LOAD_MODE_MMAP_MLOCK,
        };
        // SAFETY: `c_path` is NUL-terminated; `split` and `devices` outlive the call, and the
        // file passed Rust-side validation of its header, metadata and tensor table.
        let ptr = unsafe { sys::llama_model_load_from_file(c_path.as_ptr(), raw) };
        let ptr = NonNull::new(ptr).ok_or_else(|| ModelError::LoadFailed {
            path: path.clone(),
            hint: format!(
                "architecture {:?}, {} tensors, {} metadata keys",
                gguf.architecture().unwrap_or("<none>"),
                gguf.tensors.len(),
                gguf.metadata.len()
            ),
        })?;
        let info = read_info(ptr, &path, &gguf);
        Ok(Model { ptr, info, params: params.clone() })
    }

    /// Metadata.
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
    pub fn tokenize(&self, text: &str, add_special: bool) -> Vec<crate::Token> {
        let mut out = vec![0i32; text.len() + 2];
        loop {
            // SAFETY: text pointer/len describe a valid byte slice; out has out.len() slots.
            let n = unsafe {
                sys::llama_tokenize(
                    self.vocab(),
                    text.as_ptr().cast(),
                    text.len() as i32,
                    out.as_mut_ptr(),
                    out.len() as i32,
                    add_special,
                    false,
                )
            };
            if n >= 0 {
                out.truncate(n as usize);
                return out;
            }
            out.resize((-n) as usize, 0);
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
