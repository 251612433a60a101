//! The validating GGUF reader.

use super::{
    align_up, check_alignment, tensor_bytes, value_type, GgmlType, GgufError, TensorInfo, Value, DEFAULT_ALIGNMENT,
    KEY_ALIGNMENT, MAGIC, MAX_DIMS, MAX_TENSOR_NAME,
};
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// A GGUF file's header, metadata and tensor table, read and validated (tensor data is not read).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GgufFile {
    /// GGUF version (2 or 3).
    pub version: u32,
    /// Metadata key/value pairs in file order.
    pub metadata: Vec<(String, Value)>,
    /// The tensor table, in file order.
    pub tensors: Vec<TensorInfo>,
    /// Data alignment (`general.alignment`, default 32).
    pub alignment: u64,
    /// Absolute byte offset of the data section (end of the tensor table rounded up to `alignment`).
    pub data_offset: u64,
    /// Size of the file in bytes.
    pub file_size: u64,
    /// The path it was read from.
    pub path: PathBuf,
}

/// Minimum encoded size of a metadata entry: key length, type id, 1-byte value.
const MIN_KV_BYTES: u64 = 8 + 4 + 1;
/// Minimum encoded size of a tensor table entry: name length, n_dims, one dim, type, offset.
const MIN_TENSOR_BYTES: u64 = 8 + 4 + 8 + 4 + 8;
/// Largest number of entries pre-allocated from a declared count; more grow as they are read.
const MAX_PREALLOC: u64 = 1 << 16;

/// A reader that tracks its position and knows the input's size, so every read can be checked
/// against the bytes left before it happens.
struct Cursor<R> {
    inner: R,
    pos: u64,
    size: u64,
    path: PathBuf,
}

impl<R: Read> Cursor<R> {
    fn remaining(&self) -> u64 {
        self.size - self.pos
    }

    fn truncated(&self, what: impl Into<String>, offset: u64, needed: u64) -> GgufError {
        GgufError::Truncated { path: self.path.clone(), what: what.into(), offset, needed, file_size: self.size }
    }

    /// Fails with `Truncated` unless `needed` more bytes are left.
    fn need(&self, needed: u64, what: impl FnOnce() -> String) -> Result<(), GgufError> {
        if needed > self.remaining() {
            return Err(self.truncated(what(), self.pos, needed));
        }
        Ok(())
    }

    fn read_into(&mut self, buf: &mut [u8], what: impl FnOnce() -> String) -> Result<(), GgufError> {
        let len = buf.len() as u64;
        self.need(len, what)?;
        let start = self.pos;
        match self.inner.read_exact(buf) {
            Ok(()) => {
                self.pos += len;
                Ok(())
            }
            // The file shrank while we read it.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(self.truncated("data (the file shrank while being read)", start, len))
            }
            Err(source) => Err(GgufError::Io { path: self.path.clone(), source }),
        }
    }

    fn array<const N: usize>(&mut self, what: impl FnOnce() -> String) -> Result<[u8; N], GgufError> {
        let mut b = [0u8; N];
        self.read_into(&mut b, what)?;
        Ok(b)
    }

    fn u32(&mut self, what: impl FnOnce() -> String) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: impl FnOnce() -> String) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// Reads a length-prefixed string's bytes; the length is checked against the bytes left
    /// before anything is allocated.
    fn string_bytes(&mut self, what: &dyn Fn() -> String) -> Result<Vec<u8>, GgufError> {
        let len = self.u64(|| format!("length of {}", what()))?;
        self.need(len, || format!("{} ({len} bytes)", what()))?;
        // `len` fits in the remaining file, so the allocation is bounded by the file size.
        let mut buf = vec![0u8; usize::try_from(len).map_err(|_| self.truncated(what(), self.pos, len))?];
        self.read_into(&mut buf, what)?;
        Ok(buf)
    }
}

/// Where a value is being read, for error messages.
struct KeyCtx<'a> {
    key: &'a str,
}

impl GgufFile {
    /// Reads and fully validates the header, metadata and tensor table of the GGUF file at
    /// `path`, and checks that the file holds every tensor's data. Tensor data is not read.
    ///
    /// # Errors
    /// - [`GgufError::NotFound`], [`GgufError::IsDirectory`], [`GgufError::Io`] when the file
    ///   cannot be opened or read; [`GgufError::Empty`] for a 0-byte file.
    /// - [`GgufError::NotGguf`] when it does not start with `GGUF`;
    ///   [`GgufError::UnsupportedVersion`] unless the version is 2 or 3.
    /// - [`GgufError::Truncated`] when the header, metadata or tensor table is cut off (or a
    ///   length field points beyond the end of the file); [`GgufError::InvalidHeader`] for
    ///   impossible counts.
    /// - [`GgufError::InvalidMetadata`] (bad type id, non-UTF-8 string, nested or mixed array,
    ///   bad `general.alignment`, ...), [`GgufError::DuplicateKey`].
    /// - [`GgufError::InvalidTensor`] (bad name, dimension count, dimension, type, row length,
    ///   misaligned offset), [`GgufError::DuplicateTensor`], [`GgufError::OverlappingTensors`],
    ///   and [`GgufError::TensorOutOfBounds`] when the data section is cut off.
    /// - [`GgufError::LlamaAbort`] for a file llama.cpp would abort on: a metadata value it
    ///   asserts on (a `block_count` of 0, a token that occurs twice, ...) or a tensor that is
    ///   not 32-byte aligned.
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
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(GgufError::NotFound { path }),
            Err(source) => return Err(GgufError::Io { path, source }),
        };
        Self::read_from(BufReader::with_capacity(1 << 16, file), meta.len(), path)
    }

    /// Reads and validates a GGUF image held in memory, as [`open`](Self::open) does a file;
    /// errors name the path `(memory)`.
    ///
    /// # Errors
    /// As [`open`](Self::open), except the errors of opening a file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, GgufError> {
        Self::read_from(bytes, bytes.len() as u64, PathBuf::from("(memory)"))
    }

    /// Reads and validates a GGUF image of `size` bytes from `reader`, positioned at its start;
    /// `path` names it in errors and in the result. Reads stop at the end of the tensor table:
    /// tensor data is checked against `size`, not read.
    ///
    /// # Errors
    /// As [`open`](Self::open); [`GgufError::Truncated`] also when `reader` ends before `size`
    /// bytes, and [`GgufError::Io`] when it fails.
    pub fn read_from(reader: impl Read, size: u64, path: impl Into<PathBuf>) -> Result<Self, GgufError> {
        let path = path.into();
        if size == 0 {
            return Err(GgufError::Empty { path });
        }
        read_file(&mut Cursor { inner: reader, pos: 0, size, path })
    }

    /// The value of a metadata key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A string metadata value.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// A non-negative integer metadata value (of any integer type).
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }

    /// An integer metadata value (of any integer type) that fits in `i64`.
    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Value::as_i64)
    }

    /// A numeric metadata value as `f64`.
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }

    /// A bool metadata value.
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(Value::as_bool)
    }

    /// An array metadata value.
    pub fn get_array(&self, key: &str) -> Option<&[Value]> {
        self.get(key).and_then(Value::as_array)
    }

    /// `general.architecture`, e.g. `"llama"`.
    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }

    /// A per-architecture key: `arch_get("block_count")` reads `<architecture>.block_count`.
    pub fn arch_get(&self, suffix: &str) -> Option<&Value> {
        self.get(&format!("{}.{suffix}", self.architecture()?))
    }

    /// The tensor with this name.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Total number of tensor elements (what llama.cpp reports as the parameter count).
    pub fn n_params(&self) -> u64 {
        self.tensors.iter().map(TensorInfo::n_elements).sum()
    }

    /// Total bytes of tensor data.
    pub fn tensor_data_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.n_bytes).sum()
    }
}

/// Describes what the first bytes of a non-GGUF file look like.
fn describe_start(head: &[u8]) -> String {
    let legacy = [(b"lmgg", "a legacy GGML file"), (b"fmgg", "a legacy GGMF file"), (b"tjgg", "a legacy GGJT file")];
    if head.len() >= 4 {
        for (magic, what) in legacy {
            if &head[..4] == magic {
                return format!("{what}; convert it to GGUF with a current llama.cpp");
            }
        }
    }
    if head.len() >= 4 && head[..4] == *b"FUGG" {
        return "\"GGUF\" byte-reversed: a big-endian or corrupt file".into();
    }
    if head.len() >= 9 && head[8] == b'{' && head[4..8] == [0, 0, 0, 0] {
        return "a safetensors file (8-byte header length, then JSON); convert it with llama.cpp's convert_hf_to_gguf.py".into();
    }
    if head.starts_with(b"PK\x03\x04") {
        return "a zip archive (a PyTorch checkpoint?)".into();
    }
    if head.starts_with(&[0x80]) {
        return "a Python pickle (a PyTorch checkpoint?)".into();
    }
    if head.starts_with(b"version https://git-lfs") {
        return "a Git LFS pointer, not the model itself: run `git lfs pull`".into();
    }
    if head.iter().all(|&b| b == 0) {
        return "all zero bytes".into();
    }
    let printable = head.iter().all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    if printable || std::str::from_utf8(head).is_ok() {
        let text: String = String::from_utf8_lossy(head).chars().take(24).collect();
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("<!doctype") || lower.starts_with("<html") {
            return format!("an HTML page {text:?}: a failed download?");
        }
        return format!("text {text:?}");
    }
    "binary data".into()
}

fn read_file<R: Read>(c: &mut Cursor<R>) -> Result<GgufFile, GgufError> {
    // Magic.
    let mut head = [0u8; 32];
    let n_magic = c.size.min(4) as usize;
    c.read_into(&mut head[..n_magic], || "GGUF magic".into())?;
    if head[..n_magic] != MAGIC[..n_magic] {
        let more = c.remaining().min(28) as usize;
        c.read_into(&mut head[n_magic..n_magic + more], || "file start".into())?;
        let mut magic = [0u8; 4];
        magic[..n_magic].copy_from_slice(&head[..n_magic]);
        let looks_like = describe_start(&head[..n_magic + more]);
        return Err(GgufError::NotGguf { path: c.path.clone(), magic, looks_like });
    }
    if n_magic < 4 {
        return Err(c.truncated("GGUF magic", 0, 4));
    }

    let version = c.u32(|| "GGUF version".into())?;
    if version != 2 && version != 3 {
        return Err(GgufError::UnsupportedVersion { path: c.path.clone(), version });
    }
    let counts_at = c.pos;
    let n_tensors = c.u64(|| "tensor count".into())?;
    let n_kv = c.u64(|| "metadata count".into())?;
    // Each entry takes at least a few bytes, so counts the file cannot hold are impossible;
    // pre-allocation is capped by what the rest of the file could hold.
    let min_bytes = n_tensors
        .checked_mul(MIN_TENSOR_BYTES)
        .and_then(|t| n_kv.checked_mul(MIN_KV_BYTES).and_then(|k| k.checked_add(t)));
    if min_bytes.map_or(true, |b| b > i64::MAX as u64) {
        return Err(GgufError::InvalidHeader {
            path: c.path.clone(),
            offset: counts_at,
            reason: format!("impossible counts: {n_tensors} tensors and {n_kv} metadata entries"),
        });
    }
    let prealloc = |n: u64, min: u64| n.min(c.remaining() / min).min(MAX_PREALLOC) as usize;
    let (kv_cap, tensor_cap) = (prealloc(n_kv, MIN_KV_BYTES), prealloc(n_tensors, MIN_TENSOR_BYTES));

    // Metadata.
    let mut metadata: Vec<(String, Value)> = Vec::with_capacity(kv_cap);
    let mut keys: HashSet<String> = HashSet::new();
    let mut key_offsets: Vec<u64> = Vec::with_capacity(kv_cap);
    let mut alignment_at = 0;
    for i in 0..n_kv {
        let key_at = c.pos;
        key_offsets.push(key_at);
        let raw = c.string_bytes(&|| format!("metadata key #{i}"))?;
        let key = String::from_utf8(raw).map_err(|e| GgufError::InvalidMetadata {
            path: c.path.clone(),
            key: format!("#{i}"),
            offset: key_at,
            reason: format!("key is not valid UTF-8 ({e}): {:?}", String::from_utf8_lossy(e.as_bytes())),
        })?;
        if key.is_empty() {
            return Err(GgufError::InvalidMetadata {
                path: c.path.clone(),
                key: format!("#{i}"),
                offset: key_at,
                reason: "empty key".into(),
            });
        }
        if keys.contains(&key) {
            return Err(GgufError::DuplicateKey { path: c.path.clone(), key, offset: key_at });
        }
        if key == KEY_ALIGNMENT {
            alignment_at = c.pos;
        }
        let value = read_value(c, &KeyCtx { key: &key })?;
        keys.insert(key.clone());
        metadata.push((key, value));
    }

    let alignment = match metadata.iter().find(|(k, _)| k == KEY_ALIGNMENT) {
        None => DEFAULT_ALIGNMENT,
        Some((_, v)) => check_alignment(v).map_err(|reason| GgufError::InvalidMetadata {
            path: c.path.clone(),
            key: KEY_ALIGNMENT.into(),
            offset: alignment_at,
            reason,
        })?,
    };

    // Tensor table.
    let mut tensors: Vec<TensorInfo> = Vec::with_capacity(tensor_cap);
    let mut names: HashSet<String> = HashSet::new();
    let mut tensor_offsets: Vec<u64> = Vec::with_capacity(tensor_cap);
    for i in 0..n_tensors {
        let entry_at = c.pos;
        tensor_offsets.push(entry_at);
        let raw = c.string_bytes(&|| format!("name of tensor #{i}"))?;
        let path = c.path.clone();
        let invalid = |name: String, reason: String| GgufError::InvalidTensor {
            path: path.clone(),
            name,
            offset: entry_at,
            reason,
        };
        let name = match String::from_utf8(raw) {
            Ok(n) => n,
            Err(e) => {
                let shown = String::from_utf8_lossy(e.as_bytes()).into_owned();
                return Err(invalid(format!("#{i}"), format!("name {shown:?} is not valid UTF-8")));
            }
        };
        if name.is_empty() {
            return Err(invalid(format!("#{i}"), "empty name".into()));
        }
        if name.len() > MAX_TENSOR_NAME {
            let reason = format!("name is {} bytes; ggml allows at most {MAX_TENSOR_NAME}", name.len());
            return Err(invalid(name, reason));
        }
        if names.contains(&name) {
            return Err(GgufError::DuplicateTensor { path: c.path.clone(), name, offset: entry_at });
        }
        let n_dims = c.u32(|| format!("dimension count of tensor {name:?}"))?;
        if n_dims == 0 || n_dims as usize > MAX_DIMS {
            return Err(invalid(name, format!("{n_dims} dimensions (must be 1 to {MAX_DIMS})")));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for d in 0..n_dims {
            dims.push(c.u64(|| format!("dimension {d} of tensor {name:?}"))?);
        }
        let type_id = c.u32(|| format!("type of tensor {name:?}"))?;
        let Some(ggml_type) = GgmlType::from_id(type_id) else {
            let reason = if matches!(type_id, 4 | 5 | 31..=33 | 36..=38) {
                format!("ggml type id {type_id} was removed from ggml; convert or quantize the model again")
            } else {
                format!("unknown ggml type id {type_id}")
            };
            return Err(invalid(name, reason));
        };
        let n_bytes = match tensor_bytes(&dims, ggml_type) {
            Ok(b) => b,
            Err(reason) => return Err(invalid(name, format!("shape {dims:?} of type {ggml_type}: {reason}"))),
        };
        let offset = c.u64(|| format!("data offset of tensor {name:?}"))?;
        if offset % alignment != 0 {
            return Err(invalid(name, format!("data offset {offset} is not a multiple of the alignment {alignment}")));
        }
        names.insert(name.clone());
        tensors.push(TensorInfo { name, dims, ggml_type, offset, n_bytes });
    }

    let header_end = c.pos;
    let data_offset = align_up(header_end, alignment).unwrap_or(u64::MAX);

    // Every tensor's data must lie inside the file.
    for t in &tensors {
        let end = data_offset.checked_add(t.offset).and_then(|s| s.checked_add(t.n_bytes)).unwrap_or(u64::MAX);
        if end > c.size {
            return Err(GgufError::TensorOutOfBounds {
                path: c.path.clone(),
                name: t.name.clone(),
                end,
                file_size: c.size,
            });
        }
    }
    // No two tensors may share bytes.
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_by_key(|&i| (tensors[i].offset, i));
    for w in order.windows(2) {
        let (a, b) = (&tensors[w[0]], &tensors[w[1]]);
        if a.offset + a.n_bytes > b.offset {
            return Err(GgufError::OverlappingTensors {
                path: c.path.clone(),
                first: a.name.clone(),
                second: b.name.clone(),
                offset: data_offset + b.offset,
            });
        }
    }

    // Last: a file that is sound as GGUF, but that llama.cpp would abort on.
    if let Err((i, reason)) = super::llama::check_tensors(data_offset, &tensors) {
        return Err(GgufError::LlamaAbort {
            path: c.path.clone(),
            what: format!("tensor {:?}", tensors[i].name),
            offset: tensor_offsets[i],
            reason,
        });
    }
    if let Err((i, reason)) = super::llama::check(&metadata) {
        return Err(GgufError::LlamaAbort {
            path: c.path.clone(),
            what: format!("metadata {:?}", metadata[i].0),
            offset: key_offsets[i],
            reason,
        });
    }

    Ok(GgufFile { version, metadata, tensors, alignment, data_offset, file_size: c.size, path: c.path.clone() })
}

fn read_value<R: Read>(c: &mut Cursor<R>, ctx: &KeyCtx<'_>) -> Result<Value, GgufError> {
    let invalid = |c: &Cursor<R>, offset: u64, reason: String| GgufError::InvalidMetadata {
        path: c.path.clone(),
        key: ctx.key.to_string(),
        offset,
        reason,
    };
    let type_at = c.pos;
    let ty = c.u32(|| format!("type of metadata {:?}", ctx.key))?;
    if ty != value_type::ARRAY {
        if value_type::name(ty).is_none() {
            return Err(invalid(c, type_at, format!("invalid value type id {ty}")));
        }
        return read_scalar(c, ty, ctx, &|| format!("value of metadata {:?}", ctx.key));
    }
    let elem_at = c.pos;
    let elem = c.u32(|| format!("element type of array {:?}", ctx.key))?;
    if elem == value_type::ARRAY {
        return Err(invalid(c, elem_at, "nested arrays are not supported".into()));
    }
    if value_type::name(elem).is_none() {
        return Err(invalid(c, elem_at, format!("invalid array element type id {elem}")));
    }
    let count_at = c.pos;
    let n = c.u64(|| format!("length of array {:?}", ctx.key))?;
    // Strings take at least their 8-byte length each.
    let min_elem = value_type::fixed_size(elem).unwrap_or(8);
    let Some(min_bytes) = n.checked_mul(min_elem) else {
        return Err(invalid(c, count_at, format!("impossible array length {n}")));
    };
    c.need(min_bytes, || {
        format!("array {:?} ({n} elements of type {})", ctx.key, value_type::name(elem).unwrap_or("?"))
    })?;
    let mut out = Vec::with_capacity(n.min(MAX_PREALLOC) as usize);
    match value_type::fixed_size(elem) {
        Some(size) => {
            // Fixed-size elements: decode in bulk chunks.
            let mut buf = vec![0u8; (size * n.min(8192)) as usize];
            let mut left = n;
            while left > 0 {
                let k = left.min(8192);
                let chunk = &mut buf[..(k * size) as usize];
                c.read_into(chunk, || format!("array {:?} ({n} elements)", ctx.key))?;
                for (j, b) in chunk.chunks_exact(size as usize).enumerate() {
                    let v = decode_fixed(elem, b).ok_or_else(|| {
                        invalid(
                            c,
                            c.pos - (k - j as u64) * size,
                            format!("element {} is not a bool (byte {})", n - left + j as u64, b[0]),
                        )
                    })?;
                    out.push(v);
                }
                left -= k;
            }
        }
        None => {
            for j in 0..n {
                out.push(read_scalar(c, elem, ctx, &|| format!("string {j} of array {:?}", ctx.key))?);
            }
        }
    }
    Ok(Value::Array(out))
}

fn decode_fixed(ty: u32, b: &[u8]) -> Option<Value> {
    let a2 = || [b[0], b[1]];
    let a4 = || [b[0], b[1], b[2], b[3]];
    let a8 = || [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
    Some(match ty {
        value_type::U8 => Value::U8(b[0]),
        value_type::I8 => Value::I8(b[0] as i8),
        value_type::BOOL => match b[0] {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            _ => return None,
        },
        value_type::U16 => Value::U16(u16::from_le_bytes(a2())),
        value_type::I16 => Value::I16(i16::from_le_bytes(a2())),
        value_type::U32 => Value::U32(u32::from_le_bytes(a4())),
        value_type::I32 => Value::I32(i32::from_le_bytes(a4())),
        value_type::F32 => Value::F32(f32::from_le_bytes(a4())),
        value_type::U64 => Value::U64(u64::from_le_bytes(a8())),
        value_type::I64 => Value::I64(i64::from_le_bytes(a8())),
        value_type::F64 => Value::F64(f64::from_le_bytes(a8())),
        _ => return None,
    })
}

fn read_scalar<R: Read>(
    c: &mut Cursor<R>,
    ty: u32,
    ctx: &KeyCtx<'_>,
    what: &dyn Fn() -> String,
) -> Result<Value, GgufError> {
    let at = c.pos;
    if ty == value_type::STRING {
        let raw = c.string_bytes(what)?;
        return String::from_utf8(raw).map(Value::String).map_err(|e| GgufError::InvalidMetadata {
            path: c.path.clone(),
            key: ctx.key.to_string(),
            offset: at,
            reason: format!("{} is not valid UTF-8: {:?}", what(), String::from_utf8_lossy(e.as_bytes())),
        });
    }
    let size = value_type::fixed_size(ty).unwrap_or(8) as usize;
    let mut b = [0u8; 8];
    c.read_into(&mut b[..size], what)?;
    decode_fixed(ty, &b[..size]).ok_or_else(|| GgufError::InvalidMetadata {
        path: c.path.clone(),
        key: ctx.key.to_string(),
        offset: at,
        reason: format!("bool value must be 0 or 1, found {}", b[0]),
    })
}
