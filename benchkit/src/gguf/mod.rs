//! GGUF files: a validating reader ([`GgufFile`]) and a writer ([`GgufWriter`]).
//!
//! llama.cpp can abort the whole process on some malformed files, so benchkit reads and checks a
//! model's header, metadata and tensor table in Rust before handing its path to llama.cpp: a
//! missing, empty, truncated, corrupt or non-GGUF file becomes a typed [`GgufError`] that names
//! the file and the byte offset of the problem. Every count and length is checked against the
//! bytes left in the file before anything is allocated, and tensor data is never read. Metadata
//! values that llama.cpp asserts on while loading (a `block_count` of 0, a token that occurs
//! twice, ...) are refused too.
//!
//! ```no_run
//! use benchkit::gguf::GgufFile;
//! let f = GgufFile::open("model.gguf")?;
//! println!("{} with {} tensors, {} params", f.architecture().unwrap_or("?"), f.tensors.len(), f.n_params());
//! # Ok::<(), benchkit::gguf::GgufError>(())
//! ```

mod llama;
mod reader;
mod types;
mod writer;

pub use reader::GgufFile;
pub use types::{GgmlType, GGML_TYPE_COUNT};
pub use writer::GgufWriter;

use std::path::PathBuf;

/// The 4-byte magic at the start of every GGUF file.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// The GGUF version the writer produces.
pub const VERSION: u32 = 3;
/// Data alignment used when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Metadata key that sets the data alignment (a `u32` power of two).
pub const KEY_ALIGNMENT: &str = "general.alignment";
/// Longest tensor name ggml accepts, in bytes (`GGML_MAX_NAME - 1`).
pub const MAX_TENSOR_NAME: usize = 63;
/// Most dimensions a tensor may have (`GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;

/// Errors reading or writing a GGUF file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    /// No file at the path.
    #[error("model file not found: {path}")]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// The path is a directory.
    #[error("{path} is a directory, not a GGUF model file")]
    IsDirectory {
        /// The path.
        path: PathBuf,
    },
    /// Reading failed for an I/O reason (permissions, device error, ...).
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("{path} is empty (0 bytes): an interrupted download or copy?")]
    Empty {
        /// The path.
        path: PathBuf,
    },
    /// The file does not start with the GGUF magic.
    #[error(
        "{path} is not a GGUF file: it starts with bytes {magic:02x?} ({looks_like}), expected \"GGUF\" (47 47 55 46)"
    )]
    NotGguf {
        /// The path.
        path: PathBuf,
        /// The first 4 bytes (zero-padded if the file is shorter).
        magic: [u8; 4],
        /// What the start of the file looks like, e.g. `text "<!DO"` or `a safetensors file`.
        looks_like: String,
    },
    /// A GGUF version this reader does not support (only 2 and 3 are).
    #[error("{path}: unsupported GGUF version {version} (supported: 2 and 3){}", version_hint(*.version))]
    UnsupportedVersion {
        /// The path.
        path: PathBuf,
        /// Version found.
        version: u32,
    },
    /// The file ends before a structure it declares (or a length field is corrupt).
    #[error("{path} is truncated or corrupt: {what} at byte offset {offset} needs {needed} bytes, but the file ends at byte {file_size} (an interrupted download or copy?)")]
    Truncated {
        /// The path.
        path: PathBuf,
        /// What was being read, e.g. `the value of metadata key "general.name"`.
        what: String,
        /// Byte offset where it starts.
        offset: u64,
        /// Bytes it needs from `offset`.
        needed: u64,
        /// Size of the file.
        file_size: u64,
    },
    /// The fixed header (tensor and metadata counts) is impossible.
    #[error("{path}: corrupt GGUF header at byte offset {offset}: {reason}")]
    InvalidHeader {
        /// The path.
        path: PathBuf,
        /// Byte offset of the bad field.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A metadata entry is malformed.
    #[error("{path}: invalid metadata {key:?} at byte offset {offset}: {reason}")]
    InvalidMetadata {
        /// The path.
        path: PathBuf,
        /// The key (or `#i` when the key itself could not be read).
        key: String,
        /// Byte offset of the bad field.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A metadata key occurs twice.
    #[error("{path}: duplicate metadata key {key:?} at byte offset {offset}")]
    DuplicateKey {
        /// The path.
        path: PathBuf,
        /// The key.
        key: String,
        /// Byte offset of the second occurrence.
        offset: u64,
    },
    /// A tensor description is malformed.
    #[error("{path}: invalid tensor {name:?} (tensor table entry at byte offset {offset}): {reason}")]
    InvalidTensor {
        /// The path.
        path: PathBuf,
        /// Tensor name (or `#i` when the name itself could not be read).
        name: String,
        /// Byte offset of the tensor's table entry.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A tensor name occurs twice.
    #[error("{path}: duplicate tensor name {name:?} at byte offset {offset}")]
    DuplicateTensor {
        /// The path.
        path: PathBuf,
        /// The name.
        name: String,
        /// Byte offset of the second occurrence.
        offset: u64,
    },
    /// Two tensors' data regions overlap.
    #[error(
        "{path}: the data of tensors {first:?} and {second:?} overlap at byte offset {offset}: corrupt tensor table"
    )]
    OverlappingTensors {
        /// The path.
        path: PathBuf,
        /// The tensor that starts first.
        first: String,
        /// The tensor that starts inside `first`.
        second: String,
        /// Absolute byte offset where `second` starts.
        offset: u64,
    },
    /// A tensor's data lies beyond the end of the file.
    #[error("{path}: tensor {name:?} data ends at byte {end}, beyond the end of the file ({file_size} bytes): the file is truncated (an interrupted download?) or its tensor table is corrupt")]
    TensorOutOfBounds {
        /// The path.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// Absolute end offset of its data.
        end: u64,
        /// Size of the file.
        file_size: u64,
    },
    /// The file is sound as GGUF, but llama.cpp would abort the process loading it (a
    /// `GGML_ASSERT` on a metadata value or a tensor's placement, not an error it returns).
    #[error("{path}: {what} at byte offset {offset}: {reason}; llama.cpp would abort loading this file")]
    LlamaAbort {
        /// The path.
        path: PathBuf,
        /// The metadata key or tensor, e.g. `metadata "llama.block_count"`.
        what: String,
        /// Byte offset of its entry.
        offset: u64,
        /// What llama.cpp asserts.
        reason: String,
    },
    /// Writing the file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The writer was given something GGUF (or llama.cpp) cannot represent.
    #[error("cannot write GGUF: {reason}")]
    InvalidWrite {
        /// What is wrong.
        reason: String,
    },
}

fn version_hint(version: u32) -> &'static str {
    if version == 1 {
        "; GGUF v1 files are no longer supported, convert the model again"
    } else if version != 0 && version & 0xFFFF == 0 {
        "; the version looks byte-swapped: a big-endian GGUF on a little-endian machine?"
    } else {
        ""
    }
}

/// GGUF metadata value type ids.
pub mod value_type {
    /// `uint8`
    pub const U8: u32 = 0;
    /// `int8`
    pub const I8: u32 = 1;
    /// `uint16`
    pub const U16: u32 = 2;
    /// `int16`
    pub const I16: u32 = 3;
    /// `uint32`
    pub const U32: u32 = 4;
    /// `int32`
    pub const I32: u32 = 5;
    /// `float32`
    pub const F32: u32 = 6;
    /// `bool`
    pub const BOOL: u32 = 7;
    /// `string`
    pub const STRING: u32 = 8;
    /// `array`
    pub const ARRAY: u32 = 9;
    /// `uint64`
    pub const U64: u32 = 10;
    /// `int64`
    pub const I64: u32 = 11;
    /// `float64`
    pub const F64: u32 = 12;

    /// The GGUF name of a value type id (`"u32"`, `"string"`, ...), or `None` if invalid.
    pub fn name(id: u32) -> Option<&'static str> {
        const NAMES: [&str; 13] =
            ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"];
        NAMES.get(id as usize).copied()
    }

    /// Encoded size of a fixed-size type, `None` for strings, arrays and invalid ids.
    pub(crate) fn fixed_size(id: u32) -> Option<u64> {
        match id {
            U8 | I8 | BOOL => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            _ => None,
        }
    }
}

/// A metadata value.
///
/// Serialized (serde) untagged, as the plain JSON number, bool, string or array.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Value {
    /// `uint8`.
    U8(u8),
    /// `int8`.
    I8(i8),
    /// `uint16`.
    U16(u16),
    /// `int16`.
    I16(i16),
    /// `uint32`.
    U32(u32),
    /// `int32`.
    I32(i32),
    /// `uint64`.
    U64(u64),
    /// `int64`.
    I64(i64),
    /// `float32`.
    F32(f32),
    /// `float64`.
    F64(f64),
    /// `bool`.
    Bool(bool),
    /// UTF-8 string.
    String(String),
    /// Array; its elements must all have the same type, and not be arrays themselves.
    Array(Vec<Value>),
}

impl Value {
    /// The GGUF type id of this value (see [`value_type`]).
    pub fn type_id(&self) -> u32 {
        match self {
            Value::U8(_) => value_type::U8,
            Value::I8(_) => value_type::I8,
            Value::U16(_) => value_type::U16,
            Value::I16(_) => value_type::I16,
            Value::U32(_) => value_type::U32,
            Value::I32(_) => value_type::I32,
            Value::F32(_) => value_type::F32,
            Value::Bool(_) => value_type::BOOL,
            Value::String(_) => value_type::STRING,
            Value::Array(_) => value_type::ARRAY,
            Value::U64(_) => value_type::U64,
            Value::I64(_) => value_type::I64,
            Value::F64(_) => value_type::F64,
        }
    }

    /// The GGUF name of this value's type (`"u32"`, `"string"`, `"array"`, ...).
    pub fn type_name(&self) -> &'static str {
        value_type::name(self.type_id()).unwrap_or("?")
    }

    /// As an unsigned integer, if it is an integer that is not negative.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// As a signed integer, if it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// As a float, if it is a number (integers are converted).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64).or_else(|| self.as_u64().map(|v| v as f64)),
        }
    }

    /// As a bool, if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// As a string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// As an array, if it is one.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::U32(v)
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::U64(v)
    }
}

impl From<f32> for Value {
    fn from(v: f32) -> Self {
        Value::F32(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

/// A tensor's entry in the tensor table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TensorInfo {
    /// Name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions in ggml order (`ne0`, the contiguous row length, first).
    pub dims: Vec<u64>,
    /// Element type.
    pub ggml_type: GgmlType,
    /// Offset of its data relative to the start of the data section.
    pub offset: u64,
    /// Size of its data in bytes (computed from dims and type).
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Number of elements (product of the dimensions).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// Bytes of a tensor of `dims` and type `ty`, or the reason the shape is invalid.
pub(crate) fn tensor_bytes(dims: &[u64], ty: GgmlType) -> Result<u64, String> {
    if dims.is_empty() || dims.len() > MAX_DIMS {
        return Err(format!("{} dimensions (must be 1 to {MAX_DIMS})", dims.len()));
    }
    if let Some(i) = dims.iter().position(|&d| d == 0) {
        return Err(format!("dimension {i} is 0"));
    }
    // ggml stores dimensions and the element count as int64.
    let n = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d).filter(|&n| n <= i64::MAX as u64))
        .ok_or_else(|| format!("dimensions {dims:?} overflow the element count (int64)"))?;
    let row = ty.row_bytes(dims[0]).ok_or_else(|| {
        format!("row length ne0 = {} is not a multiple of {}'s block size {}", dims[0], ty, ty.block_size())
    })?;
    let bytes = dims[1..].iter().try_fold(row, |acc, &d| acc.checked_mul(d));
    match bytes {
        Some(b) if b <= i64::MAX as u64 => Ok(b),
        _ => Err(format!("{n} elements of {ty} overflow the byte size")),
    }
}

/// `x` rounded up to a multiple of `alignment` (a power of two); `None` on overflow.
pub(crate) fn align_up(x: u64, alignment: u64) -> Option<u64> {
    x.checked_add(alignment - 1).map(|v| v & !(alignment - 1))
}

/// Checks a `general.alignment` value; returns the alignment or the reason it is invalid.
pub(crate) fn check_alignment(v: &Value) -> Result<u64, String> {
    match v {
        Value::U32(a) if a.is_power_of_two() => Ok(u64::from(*a)),
        Value::U32(a) => Err(format!("alignment {a} is not a non-zero power of two")),
        other => Err(format!("must be of type u32, but is {}", other.type_name())),
    }
}

#[cfg(test)]
mod tests;
