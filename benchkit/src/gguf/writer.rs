//! GGUF writer: metadata and tensor table up front, tensor data streamed tensor by tensor.

use super::{align, tensor_bytes, GgmlType, GgufError, TensorInfo, Value, DEFAULT_ALIGNMENT, MAGIC};
use std::io::{BufWriter, Write};
use std::path::Path;

/// Builds a GGUF v3 file.
#[derive(Debug, Clone, Default)]
pub struct GgufWriter {
    metadata: Vec<(String, Value)>,
    tensors: Vec<TensorInfo>,
    data_size: u64,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &Value) -> Result<(), GgufError> {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.push(*x as u8),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(u8::from(*x)),
        Value::String(s) => put_str(out, s),
        Value::Array(items) => {
            let ty = items.first().map_or(0, Value::type_id);
            if items.iter().any(|i| i.type_id() != ty || matches!(i, Value::Array(_))) {
                return Err(GgufError::InvalidWrite("arrays must be homogeneous and not nested".into()));
            }
            out.extend_from_slice(&ty.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for i in items {
                put_value(out, i)?;
            }
        }
    }
    Ok(())
}

impl GgufWriter {
    /// An empty file description.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a metadata entry (file order = insertion order).
    pub fn add_kv(&mut self, key: impl Into<String>, value: Value) -> &mut Self {
        self.metadata.push((key.into(), value));
        self
    }

    /// Adds a tensor; its data is supplied by [`GgufWriter::write`]'s callback.
    ///
    /// # Errors
    /// [`GgufError::InvalidWrite`] for a bad shape or a duplicate name.
    pub fn add_tensor(&mut self, name: impl Into<String>, dims: &[u64], ggml_type: GgmlType) -> Result<&mut Self, GgufError> {
        let name = name.into();
        if self.tensors.iter().any(|t| t.name == name) {
            return Err(GgufError::InvalidWrite(format!("duplicate tensor {name:?}")));
        }
        let n_bytes = tensor_bytes(dims, ggml_type).map_err(|r| GgufError::InvalidWrite(format!("tensor {name:?}: {r}")))?;
        let offset = align(self.data_size, DEFAULT_ALIGNMENT);
        self.data_size = offset + n_bytes;
        self.tensors.push(TensorInfo { name, dims: dims.to_vec(), ggml_type, offset, n_bytes });
        Ok(self)
    }

    /// The tensors added so far.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// Writes the file. `fill(index, info, buf)` fills each tensor's zeroed buffer of exactly
    /// `info.n_bytes`. Writes to a temporary file beside `path` and renames it at the end, so an
    /// interrupted write never leaves a half-written model at `path`.
    ///
    /// # Errors
    /// [`GgufError::Io`] on write failures, or whatever `fill` returns.
    pub fn write(
        &self,
        path: &Path,
        mut fill: impl FnMut(usize, &TensorInfo, &mut [u8]) -> Result<(), GgufError>,
    ) -> Result<(), GgufError> {
        let io = |source| GgufError::Io { path: path.to_path_buf(), source };
        let mut head = Vec::new();
        head.extend_from_slice(&MAGIC);
        head.extend_from_slice(&3u32.to_le_bytes());
        head.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        head.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            put_str(&mut head, k);
            head.extend_from_slice(&v.type_id().to_le_bytes());
            put_value(&mut head, v)?;
        }
        for t in &self.tensors {
            put_str(&mut head, &t.name);
            head.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                head.extend_from_slice(&d.to_le_bytes());
            }
            head.extend_from_slice(&t.ggml_type.id().to_le_bytes());
            head.extend_from_slice(&t.offset.to_le_bytes());
        }
        head.resize(align(head.len() as u64, DEFAULT_ALIGNMENT) as usize, 0);

        let tmp = path.with_file_name(format!(
            ".{}.{}.partial",
            path.file_name().map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned()),
            std::process::id()
        ));
        let result = (|| {
            let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp).map_err(io)?);
            out.write_all(&head).map_err(io)?;
            let mut written = 0u64;
            let mut buf = Vec::new();
            for (i, t) in self.tensors.iter().enumerate() {
                let pad = t.offset - written;
                out.write_all(&vec![0u8; pad as usize]).map_err(io)?;
                buf.clear();
                buf.resize(t.n_bytes as usize, 0);
                fill(i, t, &mut buf)?;
                out.write_all(&buf).map_err(io)?;
                written = t.offset + t.n_bytes;
            }
            out.into_inner().map_err(|e| io(e.into_error()))?.sync_all().map_err(io)?;
            std::fs::rename(&tmp, path).map_err(io)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}
