//! Structure-aware: an arbitrary description (metadata of every GGUF value type, tensors of
//! any name, shape and type) written with `GgufWriter`, then read back: the same value, unless
//! llama.cpp would abort on it (`GgufError::LlamaAbort`). What the writer refuses it refuses
//! with a typed error, never a panic.
#![no_main]

use arbitrary::Arbitrary;
use benchkit::gguf::{GgmlType, GgufError, GgufFile, GgufWriter, Value, GGML_TYPE_COUNT, KEY_ALIGNMENT};
use benchkit_fuzz::checks::same_gguf_value;
use libfuzzer_sys::fuzz_target;

/// Tensor data written at most; larger descriptions are only checked by `add_tensor`.
const MAX_DATA: u64 = 1 << 20;
/// Largest alignment written (the header is padded up to it in memory).
const MAX_ALIGNMENT: u64 = 1 << 16;

#[derive(Debug, Arbitrary)]
enum Scalar {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    Str(String),
}

impl Scalar {
    fn value(self) -> Value {
        match self {
            Scalar::U8(v) => Value::U8(v),
            Scalar::I8(v) => Value::I8(v),
            Scalar::U16(v) => Value::U16(v),
            Scalar::I16(v) => Value::I16(v),
            Scalar::U32(v) => Value::U32(v),
            Scalar::I32(v) => Value::I32(v),
            Scalar::U64(v) => Value::U64(v),
            Scalar::I64(v) => Value::I64(v),
            Scalar::F32(v) => Value::F32(v),
            Scalar::F64(v) => Value::F64(v),
            Scalar::Bool(v) => Value::Bool(v),
            Scalar::Str(v) => Value::String(v),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Val {
    Scalar(Scalar),
    /// Homogeneous arrays, one per element type.
    U8s(Vec<u8>),
    I8s(Vec<i8>),
    U16s(Vec<u16>),
    I16s(Vec<i16>),
    U32s(Vec<u32>),
    I32s(Vec<i32>),
    U64s(Vec<u64>),
    I64s(Vec<i64>),
    F32s(Vec<f32>),
    F64s(Vec<f64>),
    Bools(Vec<bool>),
    Strs(Vec<String>),
    /// Whatever elements: mixed or nested arrays the writer must refuse.
    Any(Vec<Val>),
    /// `general.alignment` as 2^k.
    Alignment(u8),
}

impl Val {
    fn value(self) -> Value {
        fn arr<T>(v: Vec<T>, f: impl Fn(T) -> Value) -> Value {
            Value::Array(v.into_iter().map(f).collect())
        }
        match self {
            Val::Scalar(s) => s.value(),
            Val::U8s(v) => arr(v, Value::U8),
            Val::I8s(v) => arr(v, Value::I8),
            Val::U16s(v) => arr(v, Value::U16),
            Val::I16s(v) => arr(v, Value::I16),
            Val::U32s(v) => arr(v, Value::U32),
            Val::I32s(v) => arr(v, Value::I32),
            Val::U64s(v) => arr(v, Value::U64),
            Val::I64s(v) => arr(v, Value::I64),
            Val::F32s(v) => arr(v, Value::F32),
            Val::F64s(v) => arr(v, Value::F64),
            Val::Bools(v) => arr(v, Value::Bool),
            Val::Strs(v) => arr(v, Value::String),
            Val::Any(v) => arr(v, Val::value),
            Val::Alignment(k) => Value::U32(1u32.wrapping_shl(u32::from(k % 40))),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Key {
    Named(String),
    Alignment,
    Architecture,
}

#[derive(Debug, Arbitrary)]
enum Dim {
    Small(u8),
    Block(u8),
    Any(u64),
}

#[derive(Debug, Arbitrary)]
struct Tensor {
    name: String,
    dims: Vec<Dim>,
    type_id: u8,
}

#[derive(Debug, Arbitrary)]
struct Desc {
    /// Entries before the tensors, then entries after (an alignment set late re-lays them out).
    kvs: Vec<(Key, Val)>,
    tensors: Vec<Tensor>,
    late_kvs: Vec<(Key, Val)>,
    /// Seed of the tensor data (0: zeros).
    fill: u8,
}

fn add(w: &mut GgufWriter, kvs: Vec<(Key, Val)>) {
    for (k, v) in kvs {
        let key = match k {
            Key::Named(s) => s,
            Key::Alignment => KEY_ALIGNMENT.to_string(),
            Key::Architecture => "general.architecture".to_string(),
        };
        w.add_kv(key, v.value());
    }
}

fuzz_target!(|desc: Desc| {
    let mut w = GgufWriter::new();
    add(&mut w, desc.kvs);
    for t in desc.tensors {
        let ty = GgmlType::from_id(u32::from(t.type_id) % (GGML_TYPE_COUNT + 2));
        let Some(ty) = ty else { continue };
        let dims: Vec<u64> = t
            .dims
            .into_iter()
            .map(|d| match d {
                Dim::Small(n) => u64::from(n),
                Dim::Block(n) => u64::from(n) * ty.block_size(),
                Dim::Any(n) => n,
            })
            .collect();
        let before = w.tensors().len();
        match w.add_tensor(t.name.clone(), &dims, ty) {
            Ok(_) => assert_eq!(w.tensors().len(), before + 1),
            Err(GgufError::InvalidWrite { .. }) => assert_eq!(w.tensors().len(), before),
            Err(e) => panic!("add_tensor failed with an untyped error: {e:?}"),
        }
    }
    add(&mut w, desc.late_kvs);

    if w.alignment() > MAX_ALIGNMENT {
        return;
    }
    let data_end = w.tensors().last().map_or(Some(0), |t| t.offset.checked_add(t.n_bytes));
    if data_end.is_none_or(|e| e > MAX_DATA) {
        // Too large to write here: the writer holds each tensor's data in memory.
        return;
    }
    let seed = desc.fill;
    let out = match w.write_to(Vec::new(), |i, _, buf| {
        if seed != 0 {
            buf.iter_mut().enumerate().for_each(|(j, b)| *b = (j as u8).wrapping_mul(seed).wrapping_add(i as u8));
        }
        Ok(())
    }) {
        Ok(out) => out,
        Err(GgufError::InvalidWrite { .. }) => return,
        Err(e) => panic!("writing to memory failed with an untyped error: {e:?}"),
    };
    let f = match GgufFile::from_bytes(&out) {
        Ok(f) => f,
        // Sound GGUF that llama.cpp would abort on (a block_count of 0, a repeated token, ...).
        Err(GgufError::LlamaAbort { .. }) => return,
        Err(e) => panic!("the writer's output does not read back: {e}"),
    };
    assert_eq!(f.version, benchkit::gguf::VERSION);
    assert_eq!(f.alignment, w.alignment());
    assert_eq!(f.tensors, w.tensors());
    assert_eq!(f.metadata.len(), w.metadata().len());
    for ((ka, va), (kb, vb)) in w.metadata().iter().zip(&f.metadata) {
        assert_eq!(ka, kb);
        assert!(same_gguf_value(va, vb), "{ka}: {va:?} read back as {vb:?}");
    }
    for (i, t) in f.tensors.iter().enumerate() {
        let at = (f.data_offset + t.offset) as usize;
        let data = &out[at..at + t.n_bytes as usize];
        let want = |j: usize| if seed == 0 { 0 } else { (j as u8).wrapping_mul(seed).wrapping_add(i as u8) };
        assert!(data.iter().enumerate().all(|(j, &b)| b == want(j)), "data of {:?}", t.name);
    }
});
