//! Quantizing a GGUF model through llama.cpp's quantize API.

use crate::gguf::{GgufError, GgufFile};
use llama_sys as sys;
use std::ffi::CString;
use std::path::{Path, PathBuf};

/// Errors quantizing a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuantizeError {
    /// The input is not a valid GGUF.
    #[error(transparent)]
    InvalidInput(#[from] GgufError),
    /// A path cannot be passed to C.
    #[error("path {0:?} contains a NUL byte")]
    BadPath(PathBuf),
    /// Unknown quantization name.
    #[error("unknown quantization {name:?}; known: {known:?}")]
    UnknownQuant {
        /// Name given.
        name: String,
        /// Known names.
        known: Vec<&'static str>,
    },
    /// llama.cpp failed (its log says why).
    #[error("llama.cpp failed to quantize {input} to {quant} (run with RUST_LOG=llama.cpp=debug for its log)")]
    Failed {
        /// Input path.
        input: PathBuf,
        /// Target type.
        quant: &'static str,
    },
}

/// Target file type (names as llama-quantize spells them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
#[allow(non_camel_case_types)]
pub enum Quant {
    /// 16-bit floats.
    F16,
    /// 8-bit.
    Q8_0,
    /// 4-bit, legacy.
    Q4_0,
    /// 4-bit k-quant, medium.
    Q4_K_M,
    /// 4-bit k-quant, small.
    Q4_K_S,
    /// 5-bit k-quant, medium.
    Q5_K_M,
    /// 6-bit k-quant.
    Q6_K,
}

impl Quant {
    /// All supported targets.
    pub const ALL: &'static [Quant] =
        &[Quant::F16, Quant::Q8_0, Quant::Q4_0, Quant::Q4_K_M, Quant::Q4_K_S, Quant::Q5_K_M, Quant::Q6_K];

    /// Name as llama-quantize spells it (`Q4_K_M`).
    pub fn name(self) -> &'static str {
        match self {
            Quant::F16 => "F16",
            Quant::Q8_0 => "Q8_0",
            Quant::Q4_0 => "Q4_0",
            Quant::Q4_K_M => "Q4_K_M",
            Quant::Q4_K_S => "Q4_K_S",
            Quant::Q5_K_M => "Q5_K_M",
            Quant::Q6_K => "Q6_K",
        }
    }

    /// Parses a name, case-insensitively.
    ///
    /// # Errors
    /// [`QuantizeError::UnknownQuant`].
    pub fn from_name(name: &str) -> Result<Self, QuantizeError> {
        Quant::ALL.iter().copied().find(|q| q.name().eq_ignore_ascii_case(name)).ok_or_else(|| {
            QuantizeError::UnknownQuant { name: name.into(), known: Quant::ALL.iter().map(|q| q.name()).collect() }
        })
    }

    fn ftype(self) -> sys::llama_ftype {
        match self {
            Quant::F16 => sys::LLAMA_FTYPE_MOSTLY_F16,
            Quant::Q8_0 => sys::LLAMA_FTYPE_MOSTLY_Q8_0,
            Quant::Q4_0 => sys::LLAMA_FTYPE_MOSTLY_Q4_0,
            Quant::Q4_K_M => sys::LLAMA_FTYPE_MOSTLY_Q4_K_M,
            Quant::Q4_K_S => sys::LLAMA_FTYPE_MOSTLY_Q4_K_S,
            Quant::Q5_K_M => sys::LLAMA_FTYPE_MOSTLY_Q5_K_M,
            Quant::Q6_K => sys::LLAMA_FTYPE_MOSTLY_Q6_K,
        }
    }
}

impl std::str::FromStr for Quant {
    type Err = QuantizeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quant::from_name(s)
    }
}

/// Quantizes `input` (F32/F16 GGUF) into `output` with `n_threads` (0 = all cores).
///
/// # Errors
/// [`QuantizeError`]: invalid input file, bad path, or llama.cpp failure.
pub fn quantize(
    _backend: &crate::Backend,
    input: &Path,
    output: &Path,
    quant: Quant,
    n_threads: usize,
) -> Result<(), QuantizeError> {
    GgufFile::open(input)?;
    let c = |p: &Path| CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| QuantizeError::BadPath(p.into()));
    let (c_in, c_out) = (c(input)?, c(output)?);
    // SAFETY: returns a POD struct by value.
    let mut params = unsafe { sys::llama_model_quantize_default_params() };
    params.nthread = n_threads as i32;
    params.ftype = quant.ftype();
    // SAFETY: both paths are NUL-terminated and `params` outlives the call; the input was validated.
    let rc = unsafe { sys::llama_model_quantize(c_in.as_ptr(), c_out.as_ptr(), &params) };
    if rc != 0 {
        let _ = std::fs::remove_file(output);
        return Err(QuantizeError::Failed { input: input.into(), quant: quant.name() });
    }
    Ok(())
}
