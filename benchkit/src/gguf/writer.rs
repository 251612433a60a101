//! The GGUF writer.

use super::{
    align_up, check_alignment, tensor_bytes, value_type, GgmlType, GgufError, TensorInfo, Value, DEFAULT_ALIGNMENT,
    KEY_ALIGNMENT, MAGIC, MAX_TENSOR_NAME, VERSION,
};
use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Builds a GGUF v3 file: metadata in insertion order, then tensors whose data a callback fills.
///
/// ```no_run
/// use benchkit::gguf::{GgmlType, GgufWriter, Value};
/// let mut w = GgufWriter::new();
/// w.add_kv("general.architecture", Value::from("llama"));
/// w.add_tensor("output_norm.weight", &[64], GgmlType::F32)?;
/// w.write("out.gguf".as_ref(), |_, _, buf| {
///     buf.chunks_exact_mut(4).for_each(|c| c.copy_from_slice(&1.0f32.to_le_bytes()));
///     Ok(())
/// })?;
/// # Ok::<(), benchkit::gguf::GgufError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct GgufWriter {
    metadata: Vec<(String, Value)>,
    tensors: Vec<TensorInfo>,
    names: HashSet<String>,
    alignment: Option<u64>,
    bad_alignment: Option<String>,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl GgufWriter {
    /// An empty writer with the default alignment (32).
    pub fn new() -> Self {
        Self::default()
    }

    /// The data alignment in effect (`general.alignment` if set, else 32).
    pub fn alignment(&self) -> u64 {
        self.alignment.unwrap_or(DEFAULT_ALIGNMENT)
    }

    /// Adds a metadata entry. Entries are written in insertion order; adding a key that is
    /// already present replaces its value in place. Setting `general.alignment` (a `u32` power of
    /// two) changes the data alignment; an invalid alignment makes [`write`](Self::write) fail.
    pub fn add_kv(&mut self, key: impl Into<String>, value: Value) -> &mut Self {
        let key = key.into();
        if key == KEY_ALIGNMENT {
            match check_alignment(&value) {
                Ok(a) => {
                    self.alignment = Some(a);
                    self.bad_alignment = None;
                }
                Err(reason) => self.bad_alignment = Some(reason),
            }
            self.relayout();
        }
        match self.metadata.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None => self.metadata.push((key, value)),
        }
        self
    }

    /// Adds a tensor (its data is produced by [`write`](Self::write)'s callback); its offset and
    /// size are computed from the tensors before it, the type and the alignment.
    ///
    /// # Errors
    /// [`GgufError::InvalidWrite`] for an empty, too long (> 63 bytes) or duplicate name, or a
    /// shape the type cannot hold (0 or > 4 dims, a zero dimension, `ne0` not a multiple of the
    /// block size, overflow).
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        ggml_type: GgmlType,
    ) -> Result<&mut Self, GgufError> {
        let name = name.into();
        let bad = |reason: String| GgufError::InvalidWrite { reason };
        if name.is_empty() {
            return Err(bad("tensor name is empty".into()));
        }
        if name.len() > MAX_TENSOR_NAME {
            return Err(bad(format!(
                "tensor name {name:?} is {} bytes; ggml allows at most {MAX_TENSOR_NAME}",
                name.len()
            )));
        }
        if self.names.contains(&name) {
            return Err(bad(format!("duplicate tensor name {name:?}")));
        }
        let n_bytes =
            tensor_bytes(dims, ggml_type).map_err(|r| bad(format!("tensor {name:?} {dims:?} {ggml_type}: {r}")))?;
        let offset = match self.tensors.last() {
            Some(t) => align_up(t.offset + t.n_bytes, self.alignment())
                .ok_or_else(|| bad("total tensor data size overflows".into()))?,
            None => 0,
        };
        offset.checked_add(n_bytes).ok_or_else(|| bad("total tensor data size overflows".into()))?;
        self.names.insert(name.clone());
        self.tensors.push(TensorInfo { name, dims: dims.to_vec(), ggml_type, offset, n_bytes });
        Ok(self)
    }

    /// The metadata added so far, in order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    /// The tensor table so far (offsets relative to the data section).
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// Recomputes offsets after an alignment change.
    fn relayout(&mut self) {
        let a = self.alignment();
        let mut next = 0u64;
        for t in &mut self.tensors {
            t.offset = next;
            next = align_up(next.saturating_add(t.n_bytes), a).unwrap_or(u64::MAX);
        }
    }

    /// Checks the metadata before anything is written.
    fn check(&self) -> Result<(), GgufError> {
        if let Some(reason) = &self.bad_alignment {
            return Err(GgufError::InvalidWrite { reason: format!("{KEY_ALIGNMENT}: {reason}") });
        }
        // An alignment set after the tensors re-lays them out, which may overflow.
        if self
            .tensors
            .iter()
            .any(|t| t.offset.checked_add(t.n_bytes).and_then(|e| align_up(e, self.alignment())).is_none())
        {
            return Err(GgufError::InvalidWrite { reason: "total tensor data size overflows".into() });
        }
        for (key, value) in &self.metadata {
            let bad = |reason: String| GgufError::InvalidWrite { reason: format!("metadata {key:?}: {reason}") };
            if key.is_empty() {
                return Err(GgufError::InvalidWrite { reason: "empty metadata key".into() });
            }
            if let Value::Array(items) = value {
                if let Some(first) = items.first() {
                    if first.type_id() == value_type::ARRAY {
                        return Err(bad("nested arrays are not supported by GGUF readers".into()));
                    }
                    if let Some((i, v)) = items.iter().enumerate().find(|(_, v)| v.type_id() != first.type_id()) {
                        return Err(bad(format!(
                            "arrays must be homogeneous: element 0 is {} but element {i} is {}",
                            first.type_name(),
                            v.type_name()
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes the file: header, metadata, tensor table, padding, then each tensor's data, which
    /// `fill(index, info, buf)` writes into a zeroed buffer of exactly `info.n_bytes` bytes
    /// (reused between tensors, so memory stays at the largest tensor).
    ///
    /// The file is written to a temporary file in the same directory, synced, and renamed to
    /// `path` at the end, so a crash or error never leaves a half-written model at `path`.
    ///
    /// # Errors
    /// [`GgufError::InvalidWrite`] for metadata GGUF cannot hold (mixed or nested arrays, bad
    /// alignment, empty key); [`GgufError::Write`] when the file cannot be written or renamed;
    /// any error `fill` returns (the temporary file is removed).
    pub fn write(
        &self,
        path: &Path,
        mut fill: impl FnMut(usize, &TensorInfo, &mut [u8]) -> Result<(), GgufError>,
    ) -> Result<(), GgufError> {
        self.check()?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
        let unique = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{file_name}.{}.{unique}.tmp", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|source| GgufError::Write { path: tmp.clone(), source })?;
        let result = self
            .write_stream(BufWriter::with_capacity(1 << 20, file), &tmp, &mut fill)
            .and_then(|w| {
                let file =
                    w.into_inner().map_err(|e| GgufError::Write { path: tmp.clone(), source: e.into_error() })?;
                file.sync_all().map_err(|source| GgufError::Write { path: tmp.clone(), source })
            })
            .and_then(|()| {
                std::fs::rename(&tmp, path).map_err(|source| GgufError::Write { path: path.to_path_buf(), source })
            });
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Writes the file to `out` as [`write`](Self::write) does (same layout, same `fill`
    /// callback), and hands `out` back flushed; errors name the path `(writer)`.
    ///
    /// # Errors
    /// [`GgufError::InvalidWrite`] as for [`write`](Self::write); [`GgufError::Write`] when
    /// `out` fails; any error `fill` returns.
    pub fn write_to<W: Write>(
        &self,
        out: W,
        mut fill: impl FnMut(usize, &TensorInfo, &mut [u8]) -> Result<(), GgufError>,
    ) -> Result<W, GgufError> {
        self.check()?;
        self.write_stream(out, Path::new("(writer)"), &mut fill)
    }

    fn write_stream<W: Write>(
        &self,
        out: W,
        path: &Path,
        fill: &mut impl FnMut(usize, &TensorInfo, &mut [u8]) -> Result<(), GgufError>,
    ) -> Result<W, GgufError> {
        let io = |source: std::io::Error| GgufError::Write { path: path.to_path_buf(), source };
        let mut w = Counting { inner: out, pos: 0 };
        let align = self.alignment();

        w.put(&MAGIC).map_err(io)?;
        w.put(&VERSION.to_le_bytes()).map_err(io)?;
        w.put(&(self.tensors.len() as u64).to_le_bytes()).map_err(io)?;
        w.put(&(self.metadata.len() as u64).to_le_bytes()).map_err(io)?;
        for (key, value) in &self.metadata {
            w.string(key).map_err(io)?;
            w.put(&value.type_id().to_le_bytes()).map_err(io)?;
            write_value(&mut w, value).map_err(io)?;
        }
        for t in &self.tensors {
            w.string(&t.name).map_err(io)?;
            w.put(&(t.dims.len() as u32).to_le_bytes()).map_err(io)?;
            for d in &t.dims {
                w.put(&d.to_le_bytes()).map_err(io)?;
            }
            w.put(&t.ggml_type.id().to_le_bytes()).map_err(io)?;
            w.put(&t.offset.to_le_bytes()).map_err(io)?;
        }
        w.pad(align).map_err(io)?;
        let data_start = w.pos;

        let mut buf: Vec<u8> = Vec::new();
        for (i, t) in self.tensors.iter().enumerate() {
            debug_assert_eq!(w.pos - data_start, t.offset);
            let n = usize::try_from(t.n_bytes).map_err(|_| GgufError::InvalidWrite {
                reason: format!("tensor {:?} ({} bytes) does not fit in memory", t.name, t.n_bytes),
            })?;
            buf.clear();
            buf.resize(n, 0);
            fill(i, t, &mut buf)?;
            w.put(&buf).map_err(io)?;
            w.pad(align).map_err(io)?;
        }
        w.inner.flush().map_err(io)?;
        Ok(w.inner)
    }
}

/// A writer that counts the bytes written.
struct Counting<W: Write> {
    inner: W,
    pos: u64,
}

impl<W: Write> Counting<W> {
    fn put(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(b)?;
        self.pos += b.len() as u64;
        Ok(())
    }

    fn string(&mut self, s: &str) -> std::io::Result<()> {
        self.put(&(s.len() as u64).to_le_bytes())?;
        self.put(s.as_bytes())
    }

    fn pad(&mut self, align: u64) -> std::io::Result<()> {
        const ZEROS: [u8; 256] = [0; 256];
        let mut n = align_up(self.pos, align).unwrap_or(self.pos) - self.pos;
        while n > 0 {
            let k = n.min(ZEROS.len() as u64);
            self.put(&ZEROS[..k as usize])?;
            n -= k;
        }
        Ok(())
    }
}

fn write_value<W: Write>(w: &mut Counting<W>, v: &Value) -> std::io::Result<()> {
    match v {
        Value::U8(x) => w.put(&x.to_le_bytes()),
        Value::I8(x) => w.put(&x.to_le_bytes()),
        Value::U16(x) => w.put(&x.to_le_bytes()),
        Value::I16(x) => w.put(&x.to_le_bytes()),
        Value::U32(x) => w.put(&x.to_le_bytes()),
        Value::I32(x) => w.put(&x.to_le_bytes()),
        Value::U64(x) => w.put(&x.to_le_bytes()),
        Value::I64(x) => w.put(&x.to_le_bytes()),
        Value::F32(x) => w.put(&x.to_le_bytes()),
        Value::F64(x) => w.put(&x.to_le_bytes()),
        Value::Bool(x) => w.put(&[u8::from(*x)]),
        Value::String(s) => w.string(s),
        Value::Array(items) => {
            // An empty array carries no element type; it is written as an empty u8 array.
            let elem = items.first().map_or(value_type::U8, Value::type_id);
            w.put(&elem.to_le_bytes())?;
            w.put(&(items.len() as u64).to_le_bytes())?;
            items.iter().try_for_each(|item| write_value(w, item))
        }
    }
}
