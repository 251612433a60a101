//! Raw bytes into the validating GGUF reader: no panic, heap bounded by the input's size, and a
//! file it accepts is self-consistent and survives a re-write with `GgufWriter` unchanged.
#![no_main]

use benchkit::gguf::{GgufError, GgufFile, GgufWriter, TensorInfo, Value};
use benchkit_fuzz::heap::bounded;
use libfuzzer_sys::fuzz_target;

/// Largest alignment re-written: the writer pads the header up to it in memory.
const MAX_REWRITE_ALIGNMENT: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Ok(f) = bounded(data.len(), || GgufFile::from_bytes(data)) else { return };
    check_layout(&f, data.len() as u64);
    if f.alignment > MAX_REWRITE_ALIGNMENT {
        return;
    }

    let mut w = GgufWriter::new();
    for (k, v) in &f.metadata {
        w.add_kv(k.clone(), v.clone());
    }
    for t in &f.tensors {
        if let Err(e) = w.add_tensor(t.name.clone(), &t.dims, t.ggml_type) {
            panic!("the writer refuses tensor {:?} the reader accepted: {e}", t.name);
        }
    }
    let out = w
        .write_to(Vec::new(), |i, t, buf| {
            let at = (f.data_offset + f.tensors[i].offset) as usize;
            buf.copy_from_slice(&data[at..at + t.n_bytes as usize]);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("the writer refuses a file the reader accepted: {e}"));
    let g = match GgufFile::from_bytes(&out) {
        Ok(g) => g,
        // Packed at an alignment below ggml's 32 bytes, a tensor may land where llama.cpp cannot
        // map it, though the original placed every tensor on 32 bytes.
        Err(GgufError::LlamaAbort { .. }) if f.alignment < 32 && !f.tensors.is_empty() => return,
        Err(e) => panic!("the re-written file does not read back: {e}"),
    };
    assert_eq!(g.metadata.len(), f.metadata.len());
    for ((ka, va), (kb, vb)) in f.metadata.iter().zip(&g.metadata) {
        assert_eq!(ka, kb);
        assert!(same_value(va, vb), "{ka}: {va:?} became {vb:?}");
    }
    assert_eq!(g.alignment, f.alignment);
    // The writer packs the data in table order, so only the offsets may differ.
    let strip = |t: &TensorInfo| (t.name.clone(), t.dims.clone(), t.ggml_type, t.n_bytes);
    assert_eq!(g.tensors.iter().map(strip).collect::<Vec<_>>(), f.tensors.iter().map(strip).collect::<Vec<_>>());
    assert_eq!(g.tensors, w.tensors());
    check_layout(&g, out.len() as u64);
    for (a, b) in f.tensors.iter().zip(&g.tensors) {
        let (sa, sb) = ((f.data_offset + a.offset) as usize, (g.data_offset + b.offset) as usize);
        let n = a.n_bytes as usize;
        assert!(data[sa..sa + n] == out[sb..sb + n], "data of {:?} changed", a.name);
    }
});

/// What every accepted file must satisfy, whatever its bytes.
fn check_layout(f: &GgufFile, len: u64) {
    assert!(f.version == 2 || f.version == 3);
    assert!(f.alignment.is_power_of_two());
    assert_eq!(f.data_offset % f.alignment, 0);
    assert_eq!(f.file_size, len);
    if !f.tensors.is_empty() {
        assert!(f.data_offset <= len, "data section at {} of {len} bytes", f.data_offset);
    }
    let mut spans = Vec::with_capacity(f.tensors.len());
    for t in &f.tensors {
        assert!(!t.name.is_empty() && t.name.len() <= benchkit::gguf::MAX_TENSOR_NAME);
        assert!((1..=benchkit::gguf::MAX_DIMS).contains(&t.dims.len()) && t.dims.iter().all(|&d| d > 0));
        let row = t.ggml_type.row_bytes(t.dims[0]).expect("ne0 is a multiple of the block size");
        assert_eq!(t.dims[1..].iter().try_fold(row, |a, &d| a.checked_mul(d)), Some(t.n_bytes), "{}", t.name);
        assert_eq!(t.offset % f.alignment, 0, "{}", t.name);
        let start = f.data_offset + t.offset;
        assert!(start.checked_add(t.n_bytes).is_some_and(|end| end <= len), "{} beyond the end", t.name);
        spans.push((t.offset, t.offset + t.n_bytes));
    }
    spans.sort_unstable();
    assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "overlapping tensors");
    let mut names: Vec<&str> = f.tensors.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    assert!(names.windows(2).all(|w| w[0] != w[1]), "duplicate tensor names");
    let mut keys: Vec<&str> = f.metadata.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    assert!(keys.windows(2).all(|w| w[0] != w[1]) && keys.iter().all(|k| !k.is_empty()));
}

/// Equality that tells NaNs apart by their bits, as the file stores them.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::F32(x), Value::F32(y)) => x.to_bits() == y.to_bits(),
        (Value::F64(x), Value::F64(y)) => x.to_bits() == y.to_bits(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q)),
        _ => a == b,
    }
}
