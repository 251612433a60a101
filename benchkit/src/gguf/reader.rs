//! Validating GGUF reader (header, metadata and tensor table; tensor data is not read).

use super::{align, tensor_bytes, GgmlType, GgufError, TensorInfo, Value, DEFAULT_ALIGNMENT, MAGIC};
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// A validated GGUF file: metadata and tensor table.
#[derive(Debug, Clone)]
pub struct GgufFile {
    /// The path it was read from.
    pub path: PathBuf,
    /// GGUF version (2 or 3).
    pub version: u32,
    /// Metadata in file order.
    pub metadata: Vec<(String, Value)>,
    /// Tensor table in file order.
    pub tensors: Vec<TensorInfo>,
    /// Data alignment.
    pub alignment: u64,
    /// Offset of the data section.
    pub data_offset: u64,
    /// File size in bytes.
    pub file_size: u64,
}

struct Cursor {
    r: BufReader<File>,
    pos: u64,
    size: u64,
    path: PathBuf,
}

impl Cursor {
    fn remaining(&self) -> u64 {
        self.size - self.pos
    }

    fn bytes(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<Vec<u8>, GgufError> {
        if n > self.remaining() {
            return Err(self.truncated(n, what()));
        }
        let mut buf = vec![0u8; n as usize];
        self.r.read_exact(&mut buf).map_err(|source| GgufError::Io { path: self.path.clone(), source })?;
        self.pos += n;
        Ok(buf)
    }

    fn truncated(&self, n: u64, what: String) -> GgufError {
        GgufError::Truncated { path: self.path.clone(), what, needed: self.pos.saturating_add(n), file_size: self.size }
    }

    fn arr<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], GgufError> {
        if N as u64 > self.remaining() {
            return Err(self.truncated(N as u64, what()));
        }
        let mut buf = [0u8; N];
        self.r.read_exact(&mut buf).map_err(|source| GgufError::Io { path: self.path.clone(), source })?;
        self.pos += N as u64;
        Ok(buf)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.arr(what)?))
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.arr(what)?))
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, GgufError> {
        let start = self.pos;
        let len = self.u64(what)?;
        let bytes = self.bytes(len, what)?;
        String::from_utf8(bytes).map_err(|_| GgufError::InvalidMetadata {
            path: self.path.clone(),
            key: what(),
            offset: start,
            reason: "string is not valid UTF-8".into(),
        })
    }

    fn invalid(&self, key: &str, offset: u64, reason: String) -> GgufError {
        GgufError::InvalidMetadata { path: self.path.clone(), key: key.to_string(), offset, reason }
    }

    /// Smallest encoded size of a value of this type (used to bound counts before allocating).
    fn min_size(ty: u32) -> Option<u64> {
        Some(match ty {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4 | 5 | 6 => 4,
            8 => 8,
            9 => 12,
            10..=12 => 8,
            _ => return None,
        })
    }

    fn value(&mut self, ty: u32, key: &str, depth: u32) -> Result<Value, GgufError> {
        let what = || format!("metadata value of {key:?}");
        Ok(match ty {
            0 => Value::U8(self.arr::<1>(&what)?[0]),
            1 => Value::I8(self.arr::<1>(&what)?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.arr(&what)?)),
            3 => Value::I16(i16::from_le_bytes(self.arr(&what)?)),
            4 => Value::U32(self.u32(&what)?),
            5 => Value::I32(i32::from_le_bytes(self.arr(&what)?)),
            6 => Value::F32(f32::from_le_bytes(self.arr(&what)?)),
            7 => {
                let at = self.pos;
                match self.arr::<1>(&what)?[0] {
                    0 => Value::Bool(false),
                    1 => Value::Bool(true),
                    b => return Err(self.invalid(key, at, format!("bool byte {b} is neither 0 nor 1"))),
                }
            }
            8 => Value::String(self.string(&what)?),
            9 => {
                let at = self.pos;
                if depth > 0 {
                    return Err(self.invalid(key, at, "nested arrays are not supported".into()));
                }
                let elem = self.u32(&what)?;
                let n = self.u64(&what)?;
                let min = Self::min_size(elem)
                    .ok_or_else(|| self.invalid(key, at, format!("unknown array element type {elem}")))?;
                if n.checked_mul(min).is_none_or(|b| b > self.remaining()) {
                    return Err(self.truncated(
                        n.saturating_mul(min),
                        format!("array {key:?} of {n} elements of type {elem}"),
                    ));
                }
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(self.value(elem, key, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64(&what)?),
            11 => Value::I64(i64::from_le_bytes(self.arr(&what)?)),
            12 => Value::F64(f64::from_le_bytes(self.arr(&what)?)),
            other => return Err(self.invalid(key, self.pos - 4, format!("unknown value type {other}"))),
        })
    }
}

impl GgufFile {
    /// Reads and validates the file at `path`.
    ///
    /// # Errors
    /// A [`GgufError`] naming the problem: missing path, directory, empty file, wrong magic,
    /// unsupported version, truncation (with the offset), malformed metadata or tensor table,
    /// tensor data beyond the end of the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, GgufError> {
        let path = path.as_ref().to_path_buf();
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(GgufError::NotFound { path }),
            Err(source) => return Err(GgufError::Io { path, source }),
        };
        if meta.is_dir() {
            return Err(GgufError::IsDirectory { path });
        }
        let size = meta.len();
        if size == 0 {
            return Err(GgufError::Empty { path });
        }
        let file = File::open(&path).map_err(|source| GgufError::Io { path: path.clone(), source })?;
        let mut c = Cursor { r: BufReader::with_capacity(1 << 16, file), pos: 0, size, path: path.clone() };

        let head = c.bytes(size.min(4), &|| "magic".into())?;
        if head != MAGIC {
            let printable = String::from_utf8_lossy(&head).chars().map(|ch| if ch.is_control() { '.' } else { ch }).collect();
            return Err(GgufError::NotGguf { path, magic: head, printable });
        }
        let version = c.u32(&|| "header (version)".into())?;
        if !(2..=3).contains(&version) {
            return Err(GgufError::UnsupportedVersion { path, version });
        }
        let n_tensors = c.u64(&|| "header (tensor count)".into())?;
        let n_kv = c.u64(&|| "header (metadata count)".into())?;
        // Each entry takes at least 8 (key length) + 4 (type) + 1 bytes; each tensor info at least 8+4+8+4+8.
        if n_kv.checked_mul(13).is_none_or(|b| b > c.remaining()) {
            return Err(c.truncated(n_kv.saturating_mul(13), format!("metadata of {n_kv} entries")));
        }
        if n_tensors.checked_mul(32).is_none_or(|b| b > c.remaining()) {
            return Err(c.truncated(n_tensors.saturating_mul(32), format!("tensor table of {n_tensors} tensors")));
        }

        let mut metadata = Vec::with_capacity(n_kv as usize);
        let mut keys = HashSet::new();
        for i in 0..n_kv {
            let at = c.pos;
            let key = c.string(&|| format!("metadata key #{i}"))?;
            if !keys.insert(key.clone()) {
                return Err(c.invalid(&key, at, "duplicate key".into()));
            }
            let ty = c.u32(&|| format!("type of metadata {key:?}"))?;
            let value = c.value(ty, &key, 0)?;
            metadata.push((key, value));
        }

        let mut alignment = DEFAULT_ALIGNMENT;
        if let Some((_, v)) = metadata.iter().find(|(k, _)| k == "general.alignment") {
            match v {
                Value::U32(a) if *a > 0 && a.is_power_of_two() => alignment = u64::from(*a),
                other => {
                    return Err(c.invalid(
                        "general.alignment",
                        0,
                        format!("must be a non-zero power of two u32, got {other:?}"),
                    ))
                }
            }
        }

        let mut tensors = Vec::with_capacity(n_tensors as usize);
        let mut names = HashSet::new();
        for i in 0..n_tensors {
            let name = c.string(&|| format!("tensor #{i} name"))?;
            let bad = |reason: String| GgufError::InvalidTensor { path: path.clone(), name: name.clone(), reason };
            if !names.insert(name.clone()) {
                return Err(bad("duplicate tensor name".into()));
            }
            let n_dims = c.u32(&|| format!("tensor {name:?} dimensions"))?;
            if n_dims == 0 || n_dims > 4 {
                return Err(bad(format!("{n_dims} dimensions (must be 1..=4)")));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(c.u64(&|| format!("tensor {name:?} shape"))?);
            }
            let ty_id = c.u32(&|| format!("tensor {name:?} type"))?;
            let ggml_type = GgmlType::from_id(ty_id).ok_or_else(|| bad(format!("unknown or removed ggml type id {ty_id}")))?;
            let offset = c.u64(&|| format!("tensor {name:?} offset"))?;
            if offset % alignment != 0 {
                return Err(bad(format!("data offset {offset} is not a multiple of the alignment {alignment}")));
            }
            let n_bytes = tensor_bytes(&dims, ggml_type).map_err(bad)?;
            tensors.push(TensorInfo { name, dims, ggml_type, offset, n_bytes });
        }

        let data_offset = align(c.pos, alignment);
        // Tensor data: inside the file, no overlaps.
        let mut spans: Vec<(u64, u64, usize)> = Vec::with_capacity(tensors.len());
        for (i, t) in tensors.iter().enumerate() {
            let end = data_offset.checked_add(t.offset).and_then(|s| s.checked_add(t.n_bytes)).unwrap_or(u64::MAX);
            if end > size {
                return Err(GgufError::TensorOutOfBounds { path, name: t.name.clone(), end, file_size: size });
            }
            spans.push((t.offset, t.offset + t.n_bytes, i));
        }
        spans.sort_unstable();
        for w in spans.windows(2) {
            if w[1].0 < w[0].1 {
                return Err(GgufError::InvalidTensor {
                    path,
                    name: tensors[w[1].2].name.clone(),
                    reason: format!("data overlaps tensor {:?}", tensors[w[0].2].name),
                });
            }
        }
        Ok(GgufFile { path, version, metadata, tensors, alignment, data_offset, file_size: size })
    }

    /// A metadata value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A string metadata value.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }

    /// An integer metadata value.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key)?.as_u64()
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }

    /// Total elements of all tensors.
    pub fn n_params(&self) -> u64 {
        self.tensors.iter().map(TensorInfo::n_elements).sum()
    }
}
