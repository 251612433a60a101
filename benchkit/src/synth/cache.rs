//! Cache of generated (and quantized) synthetic models, so a benchmark pays for generation once.

use super::{Preset, SynthConfig, SynthError, WeightType};
use crate::gguf::GgufFile;
use crate::quantize::{quantize, Quant};
use crate::Backend;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The embedded default model: TinyLlama-1.1B's shape (the classic llama-bench reference size).
pub const DEFAULT_PRESET: Preset = Preset::TinyLlama1_1B;
/// Quantization of the embedded default model.
pub const DEFAULT_QUANT: Quant = Quant::Q4_0;
/// Weight seed of the embedded default model.
pub const DEFAULT_SEED: u64 = 42;

// Tests and sweeps may ask for the same model from several threads at once.
static GENERATING: Mutex<()> = Mutex::new(());

/// Where generated models are cached: `BENCHKIT_CACHE_DIR`, else `$XDG_CACHE_HOME/benchkit/models`,
/// else `~/.cache/benchkit/models`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BENCHKIT_CACHE_DIR") {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("benchkit").join("models")
}

/// File name for a spec and quantization: name, a hash of shape and seed, and the type.
pub fn cache_file_name(spec: &SynthConfig, quant: Option<Quant>) -> String {
    let mut h = Sha256::new();
    h.update(format!("{:?}|{}|{:?}|v1", spec.shape, spec.seed, spec.weight_type).as_bytes());
    let digest = h.finalize();
    let hash: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    let ty = quant.map_or_else(
        || match spec.weight_type {
            WeightType::F32 => "F32".to_string(),
            _ => "F16".to_string(),
        },
        |q| q.name().to_string(),
    );
    let name: String =
        spec.name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
    format!("{name}-{hash}-{ty}.gguf")
}

/// Returns the path of `spec` quantized to `quant` (or as written, for `None`) in `dir`,
/// generating and quantizing it first if it is not cached. A cached file that fails validation
/// is regenerated.
///
/// # Errors
/// [`SynthError`] when generation or quantization fails.
pub fn cached_model_in(
    backend: &Backend,
    dir: &Path,
    spec: &SynthConfig,
    quant: Option<Quant>,
) -> Result<PathBuf, SynthError> {
    let _guard = GENERATING.lock().unwrap_or_else(|e| e.into_inner());
    let out = dir.join(cache_file_name(spec, quant));
    if GgufFile::open(&out).is_ok() {
        return Ok(out);
    }
    std::fs::create_dir_all(dir).map_err(|source| SynthError::Io { path: dir.to_path_buf(), source })?;
    let unique = format!(
        "{}.{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
    );
    match quant {
        None => {
            let tmp = dir.join(format!(".{}.{unique}.tmp", cache_file_name(spec, None)));
            super::write_gguf(spec, &tmp)?;
            std::fs::rename(&tmp, &out).map_err(|source| SynthError::Io { path: out.clone(), source })?;
        }
        Some(q) => {
            let base_spec = SynthConfig { weight_type: WeightType::F16, ..spec.clone() };
            let base = dir.join(format!(".{}.{unique}.tmp", cache_file_name(&base_spec, None)));
            super::write_gguf(&base_spec, &base)?;
            let tmp = dir.join(format!(".{}.{unique}.tmp", cache_file_name(spec, quant)));
            let res = quantize(backend, &base, &tmp, q, 0);
            let _ = std::fs::remove_file(&base);
            res?;
            std::fs::rename(&tmp, &out).map_err(|source| SynthError::Io { path: out.clone(), source })?;
        }
    }
    Ok(out)
}

/// [`cached_model_in`] in [`cache_dir`].
///
/// # Errors
/// See [`cached_model_in`].
pub fn cached_model(backend: &Backend, spec: &SynthConfig, quant: Option<Quant>) -> Result<PathBuf, SynthError> {
    cached_model_in(backend, &cache_dir(), spec, quant)
}

/// The spec of a preset with a seed, written as F16 before quantization.
pub fn preset_config(preset: Preset, seed: u64) -> SynthConfig {
    SynthConfig { name: preset.name().to_string(), shape: preset.shape(), seed, weight_type: WeightType::F16 }
}

/// The embedded default model (generated and cached on first use): [`DEFAULT_PRESET`],
/// [`DEFAULT_QUANT`], seed [`DEFAULT_SEED`].
///
/// # Errors
/// See [`cached_model_in`].
pub fn default_model(backend: &Backend) -> Result<PathBuf, SynthError> {
    cached_model(backend, &preset_config(DEFAULT_PRESET, DEFAULT_SEED), Some(DEFAULT_QUANT))
}
