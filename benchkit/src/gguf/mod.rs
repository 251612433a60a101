//! GGUF files: a validating reader and a writer.
//!
//! llama.cpp can abort the whole process on some malformed files, so benchkit reads and checks a
//! model's header, metadata and tensor table in Rust before handing its path to llama.cpp: a
//! missing, empty, truncated, corrupt or non-GGUF file becomes a typed [`GgufError`]. Counts and
//! lengths are checked against the bytes left in the file before anything is allocated.

mod reader;
mod types;
mod writer;

pub use reader::GgufFile;
pub use types::GgmlType;
pub use writer::GgufWriter;

use std::path::PathBuf;

/// The 4-byte magic at the start of every GGUF file.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Default data alignment.
pub const DEFAULT_ALIGNMENT: u64 = 32;

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
    #[error("{path} is a directory, not a model file")]
    IsDirectory {
        /// The path.
        path: PathBuf,
    },
    /// The file is empty.
    #[error("{path} is empty (0 bytes): an interrupted download or copy?")]
    Empty {
        /// The path.
        path: PathBuf,
    },
    /// Reading failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file does not start with the GGUF magic.
    #[error("{path} is not a GGUF file (starts with {magic:02x?} {printable:?}, expected \"GGUF\")")]
    NotGguf {
        /// The path.
        path: PathBuf,
        /// First bytes.
        magic: Vec<u8>,
        /// First bytes as text.
        printable: String,
    },
    /// A GGUF version this reader does not know.
    #[error("{path}: unsupported GGUF version {version} (supported: 2, 3)")]
    UnsupportedVersion {
        /// The path.
        path: PathBuf,
        /// Version found.
        version: u32,
    },
    /// The file ends before a structure it declares.
    #[error("{path} is truncated: {what} needs bytes up to offset {needed}, but the file has {file_size} bytes")]
    Truncated {
        /// The path.
        path: PathBuf,
        /// What was being read.
        what: String,
        /// Offset the structure needs.
        needed: u64,
        /// Actual size.
        file_size: u64,
    },
    /// A metadata entry is malformed.
    #[error("{path}: invalid metadata {key:?} at offset {offset}: {reason}")]
    InvalidMetadata {
        /// The path.
        path: PathBuf,
        /// Key (or `<header>`).
        key: String,
        /// Offset.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A tensor description is malformed.
    #[error("{path}: invalid tensor {name:?}: {reason}")]
    InvalidTensor {
        /// The path.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A tensor's data lies beyond the end of the file.
    #[error("{path}: tensor {name:?} data ends at byte {end}, beyond the end of the file ({file_size} bytes): the file is truncated")]
    TensorOutOfBounds {
        /// The path.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// End offset.
        end: u64,
        /// Actual size.
        file_size: u64,
    },
    /// The writer was given something it cannot write.
    #[error("cannot write GGUF: {0}")]
    InvalidWrite(String),
}

/// A metadata value.
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
    /// Homogeneous array.
    Array(Vec<Value>),
}

impl Value {
    /// GGUF type id of this value.
    pub fn type_id(&self) -> u32 {
        match self {
            Value::U8(_) => 0,
            Value::I8(_) => 1,
            Value::U16(_) => 2,
            Value::I16(_) => 3,
            Value::U32(_) => 4,
            Value::I32(_) => 5,
            Value::F32(_) => 6,
            Value::Bool(_) => 7,
            Value::String(_) => 8,
            Value::Array(_) => 9,
            Value::U64(_) => 10,
            Value::I64(_) => 11,
            Value::F64(_) => 12,
        }
    }

    /// As an unsigned integer, if it is a non-negative integer.
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

    /// As a float, if numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v as f64),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    /// As a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// As an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// A tensor's description in the file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TensorInfo {
    /// Name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions in ggml order (ne0 first).
    pub dims: Vec<u64>,
    /// Element type.
    pub ggml_type: GgmlType,
    /// Offset relative to the start of the data section.
    pub offset: u64,
    /// Size of its data in bytes.
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// Bytes of a tensor of `dims` and type `ty`, or the reason it is invalid.
pub(crate) fn tensor_bytes(dims: &[u64], ty: GgmlType) -> Result<u64, String> {
    if dims.is_empty() || dims.len() > 4 {
        return Err(format!("{} dimensions (must be 1..=4)", dims.len()));
    }
    if let Some(i) = dims.iter().position(|&d| d == 0 || d > i64::MAX as u64) {
        return Err(format!("dimension {i} is {}", dims[i]));
    }
    let row = ty
        .row_bytes(dims[0])
        .ok_or_else(|| format!("ne0 = {} is not a multiple of {}'s block size {}", dims[0], ty, ty.block_size()))?;
    dims[1..].iter().try_fold(row, |acc, &d| acc.checked_mul(d)).ok_or_else(|| "size overflows".to_string())
}

pub(crate) fn align(x: u64, alignment: u64) -> u64 {
    x.div_ceil(alignment) * alignment
}
