//! Unit tests of the GGUF reader and writer: each validation rule gets a hand-made bad file.

use super::*;
use std::path::Path;

// ---- raw file builders -------------------------------------------------------------------

fn s(x: &str) -> Vec<u8> {
    let mut v = (x.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(x.as_bytes());
    v
}

/// An encoded metadata entry: key, type id, payload.
fn kv(key: &[u8], ty: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = (key.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(key);
    v.extend_from_slice(&ty.to_le_bytes());
    v.extend_from_slice(payload);
    v
}

fn kv_u32(key: &str, x: u32) -> Vec<u8> {
    kv(key.as_bytes(), value_type::U32, &x.to_le_bytes())
}

fn kv_str(key: &str, x: &str) -> Vec<u8> {
    kv(key.as_bytes(), value_type::STRING, &s(x))
}

/// An encoded tensor table entry.
fn ti(name: &[u8], dims: &[u64], ty: u32, offset: u64) -> Vec<u8> {
    let mut v = (name.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(name);
    v.extend_from_slice(&(dims.len() as u32).to_le_bytes());
    for d in dims {
        v.extend_from_slice(&d.to_le_bytes());
    }
    v.extend_from_slice(&ty.to_le_bytes());
    v.extend_from_slice(&offset.to_le_bytes());
    v
}

/// A whole file: header, entries, padding to `align`, then `data_len` bytes of data.
fn raw(version: u32, kvs: &[Vec<u8>], tensors: &[Vec<u8>], align: usize, data_len: usize) -> Vec<u8> {
    let mut v = MAGIC.to_vec();
    v.extend_from_slice(&version.to_le_bytes());
    v.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    v.extend_from_slice(&(kvs.len() as u64).to_le_bytes());
    kvs.iter().for_each(|k| v.extend_from_slice(k));
    tensors.iter().for_each(|t| v.extend_from_slice(t));
    while v.len() % align != 0 {
        v.push(0);
    }
    v.resize(v.len() + data_len, 0xAB);
    v
}

fn open_bytes(bytes: &[u8]) -> (tempfile::TempDir, Result<GgufFile, GgufError>) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.gguf");
    std::fs::write(&p, bytes).unwrap();
    let r = GgufFile::open(&p);
    (dir, r)
}

fn err_of(bytes: &[u8]) -> GgufError {
    match open_bytes(bytes).1 {
        Ok(f) => panic!("expected an error, got {} kvs / {} tensors", f.metadata.len(), f.tensors.len()),
        Err(e) => e,
    }
}

fn good_tensor(offset: u64) -> Vec<u8> {
    ti(b"t", &[8, 2], GgmlType::F32.id(), offset)
}

// ---- file-level errors ---------------------------------------------------------------------

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = GgufFile::open(dir.path().join("nope.gguf")).unwrap_err();
    assert!(matches!(err, GgufError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("nope.gguf"));
}

#[test]
fn directory() {
    let dir = tempfile::tempdir().unwrap();
    let err = GgufFile::open(dir.path()).unwrap_err();
    assert!(matches!(err, GgufError::IsDirectory { .. }), "{err}");
}

#[test]
fn empty_file() {
    let err = err_of(b"");
    assert!(matches!(err, GgufError::Empty { .. }), "{err}");
    assert!(err.to_string().contains("empty"));
}

#[test]
fn wrong_magic() {
    let err = err_of(b"hello, this is a text file\n");
    match &err {
        GgufError::NotGguf { magic, looks_like, .. } => {
            assert_eq!(magic, b"hell");
            assert!(looks_like.contains("text"), "{looks_like}");
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("68 65 6c 6c") || err.to_string().contains("68, 65, 6c, 6c"), "{err}");

    let mut st = 64u64.to_le_bytes().to_vec();
    st.extend_from_slice(br#"{"__metadata__":{"format":"pt"}}"#);
    match err_of(&st) {
        GgufError::NotGguf { looks_like, .. } => assert!(looks_like.contains("safetensors"), "{looks_like}"),
        other => panic!("{other}"),
    }
    match err_of(b"<!DOCTYPE html><html>") {
        GgufError::NotGguf { looks_like, .. } => assert!(looks_like.contains("HTML"), "{looks_like}"),
        other => panic!("{other}"),
    }
    // Shorter than the magic.
    match err_of(b"ab") {
        GgufError::NotGguf { magic, .. } => assert_eq!(&magic, b"ab\0\0"),
        other => panic!("{other}"),
    }
    assert!(matches!(err_of(b"GG"), GgufError::Truncated { .. }));
}

#[test]
fn versions() {
    for v in [0u32, 1, 4, 99, 0x0300_0000] {
        let err = err_of(&raw(v, &[], &[], 1, 0));
        assert!(matches!(err, GgufError::UnsupportedVersion { version, .. } if version == v), "{err}");
    }
    assert!(err_of(&raw(0x0300_0000, &[], &[], 1, 0)).to_string().contains("byte-swapped"));
    for v in [2u32, 3] {
        let (_d, f) = open_bytes(&raw(v, &[kv_str("general.architecture", "llama")], &[], 1, 0));
        let f = f.unwrap();
        assert_eq!(f.version, v);
        assert_eq!(f.architecture(), Some("llama"));
    }
}

// ---- truncation ----------------------------------------------------------------------------

/// A well-formed file with strings, arrays and tensors, from the writer.
fn sample_writer() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.add_kv("general.architecture", Value::from("llama"))
        .add_kv("general.name", Value::from("sample model"))
        .add_kv("x.count", Value::U32(7))
        .add_kv("x.words", Value::Array(vec![Value::from("a"), Value::from("bb"), Value::from("ccc")]))
        .add_kv("x.floats", Value::Array((0..20).map(|i| Value::F32(i as f32)).collect()))
        .add_kv("x.flag", Value::Bool(true));
    w.add_tensor("a.weight", &[32, 3], GgmlType::F32).unwrap();
    w.add_tensor("b.weight", &[64, 2], GgmlType::Q4_0).unwrap();
    w.add_tensor("c.bias", &[5], GgmlType::F16).unwrap();
    w
}

fn write_sample(dir: &Path) -> (PathBuf, Vec<u8>) {
    let p = dir.join("sample.gguf");
    sample_writer()
        .write(&p, |i, _, buf| {
            buf.iter_mut().enumerate().for_each(|(j, b)| *b = (i * 31 + j) as u8);
            Ok(())
        })
        .unwrap();
    let bytes = std::fs::read(&p).unwrap();
    (p, bytes)
}

#[test]
fn truncated_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let (p, bytes) = write_sample(dir.path());
    let full = GgufFile::open(&p).unwrap();
    let cut = dir.path().join("cut.gguf");
    let last_end = full.data_offset + full.tensors.last().map(|t| t.offset + t.n_bytes).unwrap();
    for n in 1..last_end as usize {
        std::fs::write(&cut, &bytes[..n]).unwrap();
        let err = GgufFile::open(&cut).unwrap_err();
        if (n as u64) < full.data_offset {
            assert!(
                matches!(err, GgufError::Truncated { .. } | GgufError::TensorOutOfBounds { .. }),
                "cut at {n}: {err}"
            );
        } else {
            assert!(matches!(err, GgufError::TensorOutOfBounds { .. }), "cut at {n}: {err}");
        }
        if let GgufError::Truncated { offset, needed, file_size, .. } = err {
            assert_eq!(file_size, n as u64);
            assert!(offset + needed > file_size);
        }
    }
    // Specific places name what was cut.
    let what_at = |needle: &[u8], extra: usize| {
        let at = bytes.windows(needle.len()).position(|w| w == needle).unwrap() + extra;
        std::fs::write(&cut, &bytes[..at]).unwrap();
        match GgufFile::open(&cut).unwrap_err() {
            GgufError::Truncated { what, .. } => what,
            other => panic!("{other}"),
        }
    };
    assert!(what_at(b"general.name", 4).contains("metadata key"));
    assert!(what_at(b"bb", 1).contains("x.words"));
    assert!(what_at(b"b.weight", 3).contains("tensor"));
    assert!(what_at(b"c.bias", 8).contains("c.bias"));
}

#[test]
fn absurd_counts_and_lengths() {
    // Impossible header counts.
    let mut b = raw(3, &[], &[], 1, 0);
    b[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(err_of(&b), GgufError::InvalidHeader { .. }));
    b[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(err_of(&b), GgufError::InvalidHeader { .. }));
    // Large but representable: the file could not hold them.
    let mut b = raw(3, &[kv_u32("a", 1)], &[], 1, 0);
    b[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(matches!(err_of(&b), GgufError::Truncated { .. }));
    // A key length beyond the file.
    let mut k = kv_u32("abc", 1);
    k[..8].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
    assert!(matches!(err_of(&raw(3, &[k], &[], 1, 0)), GgufError::Truncated { .. }));
    // A string value length beyond the file.
    let mut payload = s("value");
    payload[..8].copy_from_slice(&(1u64 << 62).to_le_bytes());
    assert!(matches!(
        err_of(&raw(3, &[kv(b"k", value_type::STRING, &payload)], &[], 1, 0)),
        GgufError::Truncated { .. }
    ));
    // Array lengths beyond the file, overflowing or not.
    for (elem, n) in [(value_type::U32, 1u64 << 40), (value_type::STRING, 1 << 58), (value_type::F64, u64::MAX / 2)] {
        let mut payload = elem.to_le_bytes().to_vec();
        payload.extend_from_slice(&n.to_le_bytes());
        let err = err_of(&raw(3, &[kv(b"arr", value_type::ARRAY, &payload)], &[], 1, 0));
        assert!(matches!(err, GgufError::Truncated { .. } | GgufError::InvalidMetadata { .. }), "{err}");
    }
    // A tensor name length beyond the file.
    let mut t = good_tensor(0);
    t[..8].copy_from_slice(&(1u64 << 50).to_le_bytes());
    assert!(matches!(err_of(&raw(3, &[], &[t], 32, 64)), GgufError::Truncated { .. }));
}

// ---- metadata ------------------------------------------------------------------------------

#[test]
fn invalid_value_types() {
    let err = err_of(&raw(3, &[kv(b"k", 13, &[0; 8])], &[], 1, 0));
    assert!(matches!(&err, GgufError::InvalidMetadata { key, .. } if key == "k"), "{err}");
    // Array of an invalid type, and nested arrays.
    for elem in [13u32, value_type::ARRAY] {
        let mut payload = elem.to_le_bytes().to_vec();
        payload.extend_from_slice(&1u64.to_le_bytes());
        payload.extend_from_slice(&[0; 16]);
        let err = err_of(&raw(3, &[kv(b"arr", value_type::ARRAY, &payload)], &[], 1, 0));
        assert!(matches!(&err, GgufError::InvalidMetadata { key, .. } if key == "arr"), "{err}");
    }
    // Bool other than 0/1, scalar and in an array.
    let err = err_of(&raw(3, &[kv(b"b", value_type::BOOL, &[2])], &[], 1, 0));
    assert!(matches!(err, GgufError::InvalidMetadata { .. }), "{err}");
    let mut payload = value_type::BOOL.to_le_bytes().to_vec();
    payload.extend_from_slice(&3u64.to_le_bytes());
    payload.extend_from_slice(&[0, 1, 7]);
    let err = err_of(&raw(3, &[kv(b"bs", value_type::ARRAY, &payload)], &[], 1, 0));
    assert!(matches!(err, GgufError::InvalidMetadata { .. }), "{err}");
    // Empty key.
    let err = err_of(&raw(3, &[kv(b"", value_type::U8, &[1])], &[], 1, 0));
    assert!(matches!(err, GgufError::InvalidMetadata { .. }), "{err}");
}

#[test]
fn non_utf8_strings() {
    let err = err_of(&raw(3, &[kv(b"bad\xff", value_type::U8, &[1])], &[], 1, 0));
    assert!(matches!(err, GgufError::InvalidMetadata { .. }), "{err}");
    let mut payload = 2u64.to_le_bytes().to_vec();
    payload.extend_from_slice(b"\xc3\x28");
    let err = err_of(&raw(3, &[kv(b"k", value_type::STRING, &payload)], &[], 1, 0));
    assert!(matches!(&err, GgufError::InvalidMetadata { key, .. } if key == "k"), "{err}");
    let err = err_of(&raw(3, &[], &[ti(b"t\xfe", &[8], 0, 0)], 32, 32));
    assert!(matches!(err, GgufError::InvalidTensor { .. }), "{err}");
}

#[test]
fn duplicate_key() {
    let err = err_of(&raw(3, &[kv_u32("a", 1), kv_u32("b", 1), kv_u32("a", 2)], &[], 1, 0));
    assert!(matches!(&err, GgufError::DuplicateKey { key, .. } if key == "a"), "{err}");
}

#[test]
fn alignment_rules() {
    for a in [0u32, 3, 48] {
        let err = err_of(&raw(3, &[kv_u32(KEY_ALIGNMENT, a)], &[], 1, 0));
        assert!(matches!(&err, GgufError::InvalidMetadata { key, .. } if key == KEY_ALIGNMENT), "{a}: {err}");
    }
    let err = err_of(&raw(3, &[kv(KEY_ALIGNMENT.as_bytes(), value_type::U64, &64u64.to_le_bytes())], &[], 1, 0));
    assert!(matches!(err, GgufError::InvalidMetadata { .. }), "{err}");
    // A custom alignment: data starts at a multiple of it, offsets must be multiples of it.
    let b = raw(3, &[kv_u32(KEY_ALIGNMENT, 64)], &[good_tensor(0), ti(b"u", &[4], 0, 64)], 64, 128);
    let (_d, f) = open_bytes(&b);
    let f = f.unwrap();
    assert_eq!(f.alignment, 64);
    assert_eq!(f.data_offset % 64, 0);
    assert_eq!(f.data_offset + 128, f.file_size);
    let b = raw(3, &[kv_u32(KEY_ALIGNMENT, 64)], &[good_tensor(0), ti(b"u", &[4], 0, 96)], 64, 256);
    assert!(matches!(err_of(&b), GgufError::InvalidTensor { .. }));
    // Default alignment 32.
    let err = err_of(&raw(3, &[], &[ti(b"t", &[4], 0, 16)], 32, 64));
    assert!(matches!(&err, GgufError::InvalidTensor { reason, .. } if reason.contains("alignment 32")), "{err}");
}

// ---- tensor table --------------------------------------------------------------------------

#[test]
fn duplicate_tensor() {
    let err = err_of(&raw(3, &[], &[good_tensor(0), good_tensor(64)], 32, 128));
    assert!(matches!(&err, GgufError::DuplicateTensor { name, .. } if name == "t"), "{err}");
}

#[test]
fn bad_dims() {
    let cases: &[(&[u64], &str)] = &[
        (&[], "dimensions"),
        (&[1, 1, 1, 1, 1], "dimensions"),
        (&[8, 0], "dimension 1 is 0"),
        (&[u64::MAX], "overflow"),
        (&[1 << 32, 1 << 32], "overflow"),
        (&[1 << 40, 1 << 40, 1 << 40], "overflow"),
    ];
    for (dims, needle) in cases {
        let err = err_of(&raw(3, &[], &[ti(b"t", dims, 0, 0)], 32, 64));
        assert!(matches!(&err, GgufError::InvalidTensor { reason, .. } if reason.contains(needle)), "{dims:?}: {err}");
    }
}

#[test]
fn bad_types() {
    for id in [4u32, 5, 31, 36, 43, 1000] {
        let err = err_of(&raw(3, &[], &[ti(b"t", &[256], id, 0)], 32, 1024));
        assert!(matches!(&err, GgufError::InvalidTensor { reason, .. } if reason.contains("type id")), "{id}: {err}");
    }
    // Row length not a multiple of the block size.
    let err = err_of(&raw(3, &[], &[ti(b"t", &[33, 2], GgmlType::Q4_0.id(), 0)], 32, 64));
    assert!(matches!(&err, GgufError::InvalidTensor { reason, .. } if reason.contains("block size")), "{err}");
    let err = err_of(&raw(3, &[], &[ti(b"t", &[128], GgmlType::Q4_K.id(), 0)], 32, 256));
    assert!(matches!(err, GgufError::InvalidTensor { .. }), "{err}");
    // Too long a name.
    let err = err_of(&raw(3, &[], &[ti(&[b'n'; 64], &[4], 0, 0)], 32, 32));
    assert!(matches!(err, GgufError::InvalidTensor { .. }), "{err}");
}

#[test]
fn tensor_bytes_from_type() {
    let b = raw(
        3,
        &[],
        &[ti(b"q", &[64, 3], GgmlType::Q4_0.id(), 0), ti(b"k", &[512], GgmlType::Q6_K.id(), 128)],
        32,
        128 + 420,
    );
    let (_d, f) = open_bytes(&b);
    let f = f.unwrap();
    assert_eq!(f.tensors[0].n_bytes, 3 * 2 * 18);
    assert_eq!(f.tensors[1].n_bytes, 2 * 210);
    assert_eq!(f.n_params(), 192 + 512);
    assert_eq!(f.tensor("k").unwrap().ggml_type, GgmlType::Q6_K);
}

#[test]
fn out_of_bounds_and_overlap() {
    // Data region one byte short.
    let err = err_of(&raw(3, &[], &[good_tensor(0)], 32, 63));
    assert!(matches!(&err, GgufError::TensorOutOfBounds { name, .. } if name == "t"), "{err}");
    // Offset far beyond the file, and an offset that overflows.
    let err = err_of(&raw(3, &[], &[good_tensor(1 << 40)], 32, 64));
    assert!(matches!(err, GgufError::TensorOutOfBounds { .. }), "{err}");
    let err = err_of(&raw(3, &[], &[good_tensor(u64::MAX - 31)], 32, 64));
    assert!(matches!(err, GgufError::TensorOutOfBounds { .. }), "{err}");
    // Overlapping tensors.
    let err = err_of(&raw(3, &[], &[good_tensor(0), ti(b"u", &[8], 0, 32)], 32, 128));
    assert!(
        matches!(&err, GgufError::OverlappingTensors { first, second, .. } if first == "t" && second == "u"),
        "{err}"
    );
    // Touching is fine, in any table order.
    let (_d, f) = open_bytes(&raw(3, &[], &[ti(b"u", &[8], 0, 64), good_tensor(0)], 32, 96));
    f.unwrap();
}

// ---- writer and round trip -----------------------------------------------------------------

#[test]
fn round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = GgufWriter::new();
    let values = vec![
        ("u8", Value::U8(200)),
        ("i8", Value::I8(-5)),
        ("u16", Value::U16(60000)),
        ("i16", Value::I16(-30000)),
        ("u32", Value::U32(4_000_000_000)),
        ("i32", Value::I32(-2_000_000_000)),
        ("u64", Value::U64(u64::MAX)),
        ("i64", Value::I64(i64::MIN)),
        ("f32", Value::F32(1.5e-5)),
        ("f64", Value::F64(-2.25)),
        ("bool", Value::Bool(false)),
        ("str", Value::from("héllo ▁wörld")),
        ("arr.str", Value::Array(vec![Value::from(""), Value::from("x")])),
        ("arr.i32", Value::Array(vec![Value::I32(1), Value::I32(-1)])),
        ("arr.bool", Value::Array(vec![Value::Bool(true), Value::Bool(false)])),
        ("arr.empty", Value::Array(vec![])),
    ];
    for (k, v) in &values {
        w.add_kv(*k, v.clone());
    }
    w.add_tensor("f32", &[3, 5], GgmlType::F32).unwrap();
    w.add_tensor("f16", &[7], GgmlType::F16).unwrap();
    w.add_tensor("q8", &[64, 2, 2], GgmlType::Q8_0).unwrap();
    w.add_tensor("bf16", &[2, 2, 2, 2], GgmlType::BF16).unwrap();
    let p = dir.path().join("rt.gguf");
    w.write(&p, |i, info, buf| {
        assert_eq!(buf.len() as u64, info.n_bytes);
        assert!(buf.iter().all(|&b| b == 0));
        buf.fill(i as u8 + 1);
        Ok(())
    })
    .unwrap();
    let f = GgufFile::open(&p).unwrap();
    assert_eq!(f.version, VERSION);
    assert_eq!(f.metadata, values.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<Vec<_>>());
    assert_eq!(f.tensors, w.tensors());
    assert_eq!(f.alignment, 32);
    assert_eq!(f.data_offset % 32, 0);
    assert_eq!(f.get_u64("u32"), Some(4_000_000_000));
    assert_eq!(f.get_i64("i8"), Some(-5));
    assert_eq!(f.get_f64("f64"), Some(-2.25));
    assert_eq!(f.get_bool("bool"), Some(false));
    assert_eq!(f.get_str("str"), Some("héllo ▁wörld"));
    assert_eq!(f.get_array("arr.i32").map(<[Value]>::len), Some(2));
    assert_eq!(f.n_params(), 15 + 7 + 256 + 16);
    // The data is where the table says.
    let bytes = std::fs::read(&p).unwrap();
    for (i, t) in f.tensors.iter().enumerate() {
        let start = (f.data_offset + t.offset) as usize;
        assert!(bytes[start..start + t.n_bytes as usize].iter().all(|&b| b == i as u8 + 1), "{}", t.name);
    }
    // No temporary files are left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn writer_alignment_and_replacement() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = GgufWriter::new();
    w.add_kv("a", Value::U32(1)).add_kv("b", Value::U32(2));
    w.add_tensor("x", &[3], GgmlType::F32).unwrap();
    w.add_tensor("y", &[3], GgmlType::F32).unwrap();
    assert_eq!(w.tensors()[1].offset, 32);
    w.add_kv(KEY_ALIGNMENT, Value::U32(128)).add_kv("a", Value::U32(9));
    assert_eq!(w.tensors()[1].offset, 128);
    assert_eq!(w.metadata()[0], ("a".to_string(), Value::U32(9)));
    let p = dir.path().join("al.gguf");
    w.write(&p, |_, _, _| Ok(())).unwrap();
    let f = GgufFile::open(&p).unwrap();
    assert_eq!(f.alignment, 128);
    assert_eq!(f.data_offset % 128, 0);
    assert_eq!(f.tensors, w.tensors());
    assert_eq!(f.metadata.len(), 3);
}

#[test]
fn writer_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.gguf");
    let mut w = GgufWriter::new();
    assert!(matches!(w.add_tensor("", &[4], GgmlType::F32), Err(GgufError::InvalidWrite { .. })));
    assert!(matches!(w.add_tensor("q", &[33], GgmlType::Q4_0), Err(GgufError::InvalidWrite { .. })));
    assert!(matches!(w.add_tensor("z", &[0], GgmlType::F32), Err(GgufError::InvalidWrite { .. })));
    assert!(matches!(w.add_tensor("n".repeat(64), &[4], GgmlType::F32), Err(GgufError::InvalidWrite { .. })));
    w.add_tensor("t", &[4], GgmlType::F32).unwrap();
    assert!(matches!(w.add_tensor("t", &[4], GgmlType::F32), Err(GgufError::InvalidWrite { .. })));

    let mut mixed = w.clone();
    mixed.add_kv("m", Value::Array(vec![Value::U32(1), Value::I32(1)]));
    assert!(matches!(mixed.write(&p, |_, _, _| Ok(())), Err(GgufError::InvalidWrite { .. })));
    let mut nested = w.clone();
    nested.add_kv("n", Value::Array(vec![Value::Array(vec![])]));
    assert!(matches!(nested.write(&p, |_, _, _| Ok(())), Err(GgufError::InvalidWrite { .. })));
    let mut align = w.clone();
    align.add_kv(KEY_ALIGNMENT, Value::U32(24));
    assert!(matches!(align.write(&p, |_, _, _| Ok(())), Err(GgufError::InvalidWrite { .. })));

    // A failing fill leaves neither the target nor a temporary file.
    let err = w.write(&p, |_, _, _| Err(GgufError::InvalidWrite { reason: "stop".into() })).unwrap_err();
    assert!(matches!(err, GgufError::InvalidWrite { .. }));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // Writing into a missing directory fails with a Write error.
    let err = w.write(&dir.path().join("no/such/dir.gguf"), |_, _, _| Ok(())).unwrap_err();
    assert!(matches!(err, GgufError::Write { .. }), "{err}");
}

#[test]
fn writer_replaces_existing_file_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let (p, first) = write_sample(dir.path());
    let mut w = GgufWriter::new();
    w.add_kv("general.architecture", Value::from("other"));
    w.write(&p, |_, _, _| Ok(())).unwrap();
    let f = GgufFile::open(&p).unwrap();
    assert_eq!(f.architecture(), Some("other"));
    assert!(f.tensors.is_empty());
    assert_ne!(std::fs::read(&p).unwrap(), first);
}

#[test]
fn value_helpers() {
    assert_eq!(Value::I32(-1).as_u64(), None);
    assert_eq!(Value::I32(7).as_u64(), Some(7));
    assert_eq!(Value::U64(u64::MAX).as_i64(), None);
    assert_eq!(Value::U8(3).as_f64(), Some(3.0));
    assert_eq!(Value::from("x").as_str(), Some("x"));
    assert_eq!(Value::from("x").as_u64(), None);
    assert_eq!(Value::Array(vec![]).type_id(), value_type::ARRAY);
    assert_eq!(Value::F64(1.0).type_name(), "f64");
    assert_eq!(Value::Bool(true).as_bool(), Some(true));
}

// ---- readers and writers over memory -------------------------------------------------------

#[test]
fn bytes_and_streams_read_as_files_do() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = write_sample(dir.path());
    let from_file = GgufFile::open(&path).unwrap();
    let from_bytes = GgufFile::from_bytes(&bytes).unwrap();
    assert_eq!(from_bytes.path, Path::new("(memory)"));
    assert_eq!(GgufFile { path: path.clone(), ..from_bytes }, from_file);
    let streamed = GgufFile::read_from(std::io::Cursor::new(&bytes), bytes.len() as u64, "s").unwrap();
    assert_eq!(streamed.tensors, from_file.tensors);
    // The same errors, naming the given path.
    assert!(matches!(GgufFile::from_bytes(b""), Err(GgufError::Empty { .. })));
    match GgufFile::read_from(&bytes[..40], bytes.len() as u64, "short") {
        Err(GgufError::Truncated { path, .. }) => assert_eq!(path, Path::new("short")),
        other => panic!("{other:?}"),
    }
    // A 2^60 tensor count is refused from the header alone.
    let mut huge = raw(3, &[], &[], 1, 0);
    huge[8..16].copy_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(matches!(GgufFile::from_bytes(&huge), Err(GgufError::InvalidHeader { .. })));
    huge[8..16].copy_from_slice(&0u64.to_le_bytes());
    huge[16..24].copy_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(matches!(GgufFile::from_bytes(&huge), Err(GgufError::InvalidHeader { .. })));
    huge[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(matches!(GgufFile::from_bytes(&huge), Err(GgufError::Truncated { .. })));
}

#[test]
fn write_to_memory_equals_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bytes) = write_sample(dir.path());
    let out = sample_writer()
        .write_to(Vec::new(), |_, _, buf| {
            buf.fill(7);
            Ok(())
        })
        .unwrap();
    assert_eq!(out.len(), bytes.len());
    let f = GgufFile::from_bytes(&out).unwrap();
    assert_eq!(f.tensors, sample_writer().tensors());
    let mut bad = GgufWriter::new();
    bad.add_kv("a", Value::Array(vec![Value::U8(1), Value::Bool(true)]));
    assert!(matches!(bad.write_to(Vec::new(), |_, _, _| Ok(())), Err(GgufError::InvalidWrite { .. })));
}

#[test]
fn alignment_set_after_huge_tensors_is_refused() {
    let mut w = GgufWriter::new();
    w.add_tensor("a", &[1 << 62], GgmlType::I8).unwrap();
    w.add_tensor("b", &[1 << 62], GgmlType::I8).unwrap();
    w.add_tensor("c", &[(1 << 63) - 1], GgmlType::I8).unwrap();
    w.add_kv(KEY_ALIGNMENT, Value::U32(1 << 31));
    assert!(matches!(w.write_to(std::io::sink(), |_, _, _| Ok(())), Err(GgufError::InvalidWrite { .. })));
}

// ---- values llama.cpp aborts on --------------------------------------------------------------

fn llama_err(kvs: &[(&str, Value)]) -> Option<String> {
    let mut w = GgufWriter::new();
    w.add_kv("general.architecture", Value::from("llama"));
    w.add_kv("llama.block_count", Value::U32(2));
    for (k, v) in kvs {
        w.add_kv(*k, v.clone());
    }
    let bytes = w.write_to(Vec::new(), |_, _, _| Ok(())).unwrap();
    match GgufFile::from_bytes(&bytes) {
        Ok(_) => None,
        Err(GgufError::LlamaAbort { what, reason, .. }) => Some(format!("{what}: {reason}")),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn values_llama_cpp_asserts_on_are_refused() {
    let strs = |v: &[&str]| Value::Array(v.iter().map(|s| Value::from(*s)).collect());
    assert_eq!(llama_err(&[]), None);
    for bad in [0u32, 513] {
        assert!(llama_err(&[("llama.block_count", Value::U32(bad))])
            .unwrap()
            .starts_with("metadata \"llama.block_count\""));
    }
    // Another type makes llama.cpp throw instead: left to it.
    assert_eq!(llama_err(&[("llama.block_count", Value::U64(0))]), None);
    assert!(llama_err(&[("llama.nextn_predict_layers", Value::U32(3))]).is_some());
    assert_eq!(llama_err(&[("llama.nextn_predict_layers", Value::U32(2))]), None);
    // Experts.
    assert!(
        llama_err(&[("llama.expert_count", Value::U32(1025)), ("llama.expert_used_count", Value::U32(2))]).is_some()
    );
    assert!(llama_err(&[("llama.expert_count", Value::U32(8))])
        .unwrap()
        .starts_with("metadata \"llama.expert_count\""));
    assert!(llama_err(&[("llama.expert_used_count", Value::U32(1))]).is_some());
    assert!(llama_err(&[("llama.expert_count", Value::U32(4)), ("llama.expert_used_count", Value::U32(5))]).is_some());
    let per_layer = Value::Array(vec![Value::I32(2), Value::I32(-1)]);
    assert!(llama_err(&[("llama.expert_count", Value::U32(8)), ("llama.expert_used_count", per_layer)]).is_some());
    let ok = [("llama.expert_count", Value::U32(8)), ("llama.expert_used_count", Value::U32(2))];
    assert_eq!(llama_err(&ok), None);
    let groups = |g: u32, used: u32| {
        let mut v = ok.to_vec();
        v.push(("llama.expert_group_count", Value::U32(g)));
        v.push(("llama.expert_group_used_count", Value::U32(used)));
        llama_err(&v)
    };
    assert_eq!(groups(4, 2), None);
    assert!(groups(8, 2).is_some());
    assert!(groups(3, 1).is_some());
    assert!(groups(4, 0).is_some());
    assert!(groups(4, 4).is_some());
    assert!(llama_err(&[("llama.expert_group_count", Value::U32(1))]).is_some());
    // RoPE scaling, compared as a C string.
    assert_eq!(llama_err(&[("llama.rope.scaling.type", Value::from("yarn"))]), None);
    assert_eq!(llama_err(&[("llama.rope.scaling.type", Value::from("yarn\0junk"))]), None);
    assert!(llama_err(&[("llama.rope.scaling.type", Value::from("quadratic"))]).is_some());
    // The first key equal up to a NUL is the one llama.cpp reads.
    assert!(llama_err(&[("llama.block_count\0x", Value::U32(0))]).is_none());
    let mut w = GgufWriter::new();
    w.add_kv("general.architecture", Value::from("llama"))
        .add_kv("llama.block_count\0x", Value::U32(0))
        .add_kv("llama.block_count", Value::U32(2));
    let bytes = w.write_to(Vec::new(), |_, _, _| Ok(())).unwrap();
    assert!(matches!(GgufFile::from_bytes(&bytes), Err(GgufError::LlamaAbort { .. })));
    // Tokens: unique as C strings, an empty one named [EMPTY_<id>].
    assert_eq!(llama_err(&[("tokenizer.ggml.tokens", strs(&["a", "b", "", ""]))]), None);
    assert!(llama_err(&[("tokenizer.ggml.tokens", strs(&["a", "b", "a"]))]).unwrap().contains("token 2"));
    assert!(llama_err(&[("tokenizer.ggml.tokens", strs(&["a\0x", "a\0y"]))]).is_some());
    assert!(llama_err(&[("tokenizer.ggml.tokens", strs(&["[EMPTY_1]", ""]))]).is_some());
    assert!(llama_err(&[("tokenizer.ggml.tokens", strs(&["a", "\0", "[EMPTY_1]"]))]).is_some());
    // A WordPiece vocabulary with a byte token.
    let types = Value::Array(vec![Value::I32(1), Value::I32(6)]);
    let bert = |model: &str| {
        llama_err(&[
            ("tokenizer.ggml.model", Value::from(model)),
            ("tokenizer.ggml.tokens", strs(&["a", "b"])),
            ("tokenizer.ggml.token_type", types.clone()),
        ])
    };
    assert!(bert("bert").unwrap().contains("byte token"));
    assert_eq!(bert("llama"), None);
    // Architectures whose loader asserts experts.
    let mut w = GgufWriter::new();
    w.add_kv("general.architecture", Value::from("smallthinker")).add_kv("smallthinker.block_count", Value::U32(2));
    let e = GgufFile::from_bytes(&w.write_to(Vec::new(), |_, _, _| Ok(())).unwrap()).unwrap_err();
    assert!(e.to_string().contains("smallthinker.expert_count"), "{e}");
    // A CLIP projector has no hyperparameters to check.
    let mut w = GgufWriter::new();
    w.add_kv("general.architecture", Value::from("clip")).add_kv("clip.block_count", Value::U32(0));
    assert!(GgufFile::from_bytes(&w.write_to(Vec::new(), |_, _, _| Ok(())).unwrap()).is_ok());
}

#[test]
fn tensors_llama_cpp_cannot_map_are_refused() {
    // general.alignment 16 lets a tensor start 16 bytes into a 32-byte block.
    let mut w = GgufWriter::new();
    w.add_kv(KEY_ALIGNMENT, Value::U32(16));
    w.add_tensor("a", &[4], GgmlType::F32).unwrap();
    w.add_tensor("b", &[4], GgmlType::F32).unwrap();
    let bytes = w.write_to(Vec::new(), |_, _, _| Ok(())).unwrap();
    match GgufFile::from_bytes(&bytes) {
        Err(GgufError::LlamaAbort { what, reason, .. }) => {
            assert!(reason.contains("multiple of 32"), "{reason}");
            assert!(what == "tensor \"a\"" || what == "tensor \"b\"", "{what}");
        }
        other => panic!("{other:?}"),
    }
}
