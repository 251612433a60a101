//! Synthetic llama-architecture models of any shape, with deterministic random weights.
//!
//! Inference speed depends on a model's shape and quantization, not on its weights' values, so
//! a synthetic model with a well-known shape lets users benchmark a model they have not
//! downloaded. [`write_gguf`] writes a complete, loadable llama GGUF (hyperparameters, a
//! self-contained SentencePiece-style tokenizer, and F32/F16 weights); [`cached_model`] also
//! quantizes it (through llama.cpp's quantize API) and caches the result.
//!
//! ```no_run
//! use benchkit::synth::{write_gguf, Preset, SynthConfig, WeightType};
//! let spec = SynthConfig::from_preset(Preset::TinyLlama1_1B, 42, WeightType::F16);
//! write_gguf(&spec, "tinyllama-synth-f16.gguf".as_ref())?;
//! # Ok::<(), benchkit::synth::SynthError>(())
//! ```

mod cache;
mod shape;
mod tokenizer;

pub use cache::{
    cache_dir, cache_file_name, cached_model, cached_model_in, default_model, preset_config, DEFAULT_PRESET,
    DEFAULT_QUANT, DEFAULT_SEED,
};
pub use shape::{Preset, Shape, MAX_LAYERS, MAX_VOCAB, MIN_VOCAB};

use crate::gguf::{GgmlType, GgufError, GgufWriter, Value};
use rayon::prelude::*;
use shape::TensorKind;
use std::path::{Path, PathBuf};

/// Metadata key holding the weight seed of a synthetic model.
pub const KEY_SEED: &str = "benchkit.synth.seed";
/// Metadata key holding the preset (or custom) name of a synthetic model.
pub const KEY_NAME: &str = "benchkit.synth.preset_or_name";

/// Errors generating a synthetic model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    /// The shape is not a valid model.
    #[error("invalid model shape: {field}: {reason}")]
    InvalidShape {
        /// The offending field of [`Shape`].
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// No preset has that name.
    #[error("unknown preset {name:?}; known presets: {}", .known.join(", "))]
    UnknownPreset {
        /// The name given.
        name: String,
        /// The known names.
        known: Vec<&'static str>,
    },
    /// Writing the file failed.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// Quantizing failed.
    #[error(transparent)]
    Quantize(#[from] crate::quantize::QuantizeError),
    /// File system I/O failed (e.g. creating the cache directory).
    #[error("cannot write to {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Type of the written weight matrices (1-D norm weights and biases are always F32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum WeightType {
    /// 32-bit floats (`general.file_type` 0).
    F32,
    /// 16-bit floats (`general.file_type` 1).
    F16,
}

impl WeightType {
    /// The ggml type of the weight matrices.
    pub fn ggml_type(self) -> GgmlType {
        match self {
            WeightType::F32 => GgmlType::F32,
            WeightType::F16 => GgmlType::F16,
        }
    }

    /// The `general.file_type` value (`LLAMA_FTYPE_ALL_F32` or `LLAMA_FTYPE_MOSTLY_F16`).
    pub fn file_type(self) -> u32 {
        match self {
            WeightType::F32 => 0,
            WeightType::F16 => 1,
        }
    }
}

/// What to write.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SynthConfig {
    /// Model name (`general.name` and `benchkit.synth.preset_or_name`), usually the preset's.
    pub name: String,
    /// Shape.
    pub shape: Shape,
    /// Weight seed.
    pub seed: u64,
    /// Type of the weight matrices.
    pub weight_type: WeightType,
}

impl SynthConfig {
    /// The spec of a preset, named after it.
    pub fn from_preset(preset: Preset, seed: u64, weight_type: WeightType) -> Self {
        SynthConfig { name: preset.name().to_string(), shape: preset.shape(), seed, weight_type }
    }

    /// Bytes of tensor data the model will have (excluding header and padding).
    pub fn data_bytes(&self) -> u64 {
        let wt = self.weight_type.ggml_type().type_size();
        self.shape
            .plan()
            .iter()
            .map(|t| {
                let n: u64 = t.dims.iter().product();
                n * if t.kind == TensorKind::Matrix { wt } else { 4 }
            })
            .sum()
    }
}

/// Writes the model described by `spec` to `path` (atomically: through a temporary file that
/// is renamed at the end). Deterministic: the same spec gives a byte-identical file, whatever
/// the number of threads.
///
/// Weights are uniform random with standard deviation 0.02 (biases 0.01), generated from
/// `(seed, tensor index, chunk index)` in parallel; norm weights are 1. Memory use is about the
/// size of the largest tensor.
///
/// # Errors
/// [`SynthError::InvalidShape`] for a bad shape; [`SynthError::Gguf`] when writing fails.
pub fn write_gguf(spec: &SynthConfig, path: &Path) -> Result<(), SynthError> {
    let s = &spec.shape;
    s.validate()?;
    let mut w = GgufWriter::new();
    add_metadata(&mut w, spec);
    let plan = s.plan();
    for t in &plan {
        let ty = if t.kind == TensorKind::Matrix { spec.weight_type.ggml_type() } else { GgmlType::F32 };
        w.add_tensor(t.name.clone(), &t.dims, ty)?;
    }
    let seed = spec.seed;
    w.write(path, |i, info, buf| {
        fill_tensor(buf, info.ggml_type, plan[i].kind, seed, i as u64);
        Ok(())
    })?;
    Ok(())
}

fn add_metadata(w: &mut GgufWriter, spec: &SynthConfig) {
    let s = &spec.shape;
    let v = tokenizer::vocab(s.n_vocab as usize);
    w.add_kv("general.architecture", Value::from("llama"))
        .add_kv("general.name", Value::from(spec.name.as_str()))
        .add_kv("general.file_type", Value::U32(spec.weight_type.file_type()))
        .add_kv("general.alignment", Value::U32(32))
        .add_kv("llama.context_length", Value::U32(s.n_ctx_train))
        .add_kv("llama.embedding_length", Value::U32(s.n_embd))
        .add_kv("llama.block_count", Value::U32(s.n_layer))
        .add_kv("llama.feed_forward_length", Value::U32(s.n_ff))
        .add_kv("llama.attention.head_count", Value::U32(s.n_head))
        .add_kv("llama.attention.head_count_kv", Value::U32(s.n_head_kv))
        .add_kv("llama.rope.freq_base", Value::F32(s.rope_theta))
        .add_kv("llama.attention.layer_norm_rms_epsilon", Value::F32(s.rms_norm_eps))
        .add_kv("llama.rope.dimension_count", Value::U32(s.head_dim()))
        .add_kv("llama.vocab_size", Value::U32(s.n_vocab))
        .add_kv("tokenizer.ggml.model", Value::from("llama"))
        .add_kv("tokenizer.ggml.tokens", Value::Array(v.tokens.into_iter().map(Value::String).collect()))
        .add_kv("tokenizer.ggml.scores", Value::Array(v.scores.into_iter().map(Value::F32).collect()))
        .add_kv("tokenizer.ggml.token_type", Value::Array(v.types.into_iter().map(Value::I32).collect()))
        .add_kv("tokenizer.ggml.bos_token_id", Value::U32(tokenizer::BOS_ID))
        .add_kv("tokenizer.ggml.eos_token_id", Value::U32(tokenizer::EOS_ID))
        .add_kv("tokenizer.ggml.unknown_token_id", Value::U32(tokenizer::UNK_ID))
        .add_kv("tokenizer.ggml.add_bos_token", Value::Bool(true))
        .add_kv("tokenizer.ggml.add_eos_token", Value::Bool(false))
        .add_kv(KEY_SEED, Value::U64(spec.seed))
        .add_kv(KEY_NAME, Value::from(spec.name.as_str()));
}

/// Elements generated per parallel chunk; fixed, so the output does not depend on thread count.
const CHUNK_ELEMS: usize = 1 << 16;
/// Elements converted at a time inside a chunk.
const BATCH: usize = 1024;
/// Half-width of the uniform distribution of matrix weights: std 0.02 = a / sqrt(3).
const MATRIX_HALF_WIDTH: f32 = 0.02 * 1.732_050_8;
/// Half-width for biases: std 0.01.
const BIAS_HALF_WIDTH: f32 = 0.01 * 1.732_050_8;

/// SplitMix64 step: a fast, well-mixed 64-bit generator (Steele, Lea & Flood 2014).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator state for one chunk of one tensor.
fn chunk_state(seed: u64, tensor: u64, chunk: u64) -> u64 {
    let mut s = seed;
    let a = splitmix64(&mut s);
    let mut t = a ^ tensor.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    let b = splitmix64(&mut t);
    let mut c = b ^ chunk.wrapping_mul(0xA076_1D64_78BD_642F);
    splitmix64(&mut c)
}

/// Fills `out` with uniform values in `[-a, a)`.
fn uniform(state: &mut u64, a: f32, out: &mut [f32]) {
    const SCALE: f32 = 1.0 / (1u32 << 24) as f32;
    let mut pairs = out.chunks_exact_mut(2);
    for p in &mut pairs {
        let r = splitmix64(state);
        p[0] = (((r >> 40) as f32) * SCALE * 2.0 - 1.0) * a;
        p[1] = ((((r >> 8) & 0xFF_FFFF) as f32) * SCALE * 2.0 - 1.0) * a;
    }
    for x in pairs.into_remainder() {
        *x = (((splitmix64(state) >> 40) as f32) * SCALE * 2.0 - 1.0) * a;
    }
}

/// Fills a tensor's bytes (F32 or F16 elements) deterministically, in parallel chunks.
fn fill_tensor(buf: &mut [u8], ty: GgmlType, kind: TensorKind, seed: u64, tensor: u64) {
    let elem = ty.type_size() as usize;
    buf.par_chunks_mut(CHUNK_ELEMS * elem).enumerate().for_each(|(ci, chunk)| {
        let mut state = chunk_state(seed, tensor, ci as u64);
        let mut vals = [0f32; BATCH];
        let mut halfs = [half::f16::ZERO; BATCH];
        for out in chunk.chunks_mut(BATCH * elem) {
            let n = out.len() / elem;
            let v = &mut vals[..n];
            match kind {
                TensorKind::Norm => v.fill(1.0),
                TensorKind::Matrix => uniform(&mut state, MATRIX_HALF_WIDTH, v),
                TensorKind::Bias => uniform(&mut state, BIAS_HALF_WIDTH, v),
            }
            if elem == 2 {
                use half::slice::HalfFloatSliceExt;
                halfs[..n].convert_from_f32_slice(v);
                for (o, h) in out.chunks_exact_mut(2).zip(&halfs[..n]) {
                    o.copy_from_slice(&h.to_le_bytes());
                }
            } else {
                for (o, x) in out.chunks_exact_mut(4).zip(v.iter()) {
                    o.copy_from_slice(&x.to_le_bytes());
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::GgufFile;

    fn spec(shape: Shape, seed: u64, weight_type: WeightType) -> SynthConfig {
        SynthConfig { name: "test-model".into(), shape, seed, weight_type }
    }

    fn f32s(bytes: &[u8]) -> Vec<f32> {
        bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    }

    #[test]
    fn tiny_model_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        for (tie, bias, wt) in
            [(false, false, WeightType::F16), (true, true, WeightType::F32), (false, true, WeightType::F16)]
        {
            let shape = Shape { tie_embeddings: tie, attn_qkv_bias: bias, ..Shape::tiny() };
            let sp = spec(shape, 7, wt);
            let p = dir.path().join("tiny.gguf");
            write_gguf(&sp, &p).unwrap();
            let f = GgufFile::open(&p).unwrap();
            let n_layer = shape.n_layer as usize;
            let expected = 2 + 9 * n_layer + usize::from(!tie) + if bias { 3 * n_layer } else { 0 };
            assert_eq!(f.tensors.len(), expected);
            assert_eq!(f.n_params(), shape.n_params());
            assert_eq!(f.architecture(), Some("llama"));
            assert_eq!(f.get_str("general.name"), Some("test-model"));
            assert_eq!(f.get_u64("general.file_type"), Some(u64::from(wt.file_type())));
            for (key, want) in [
                ("llama.context_length", shape.n_ctx_train),
                ("llama.embedding_length", shape.n_embd),
                ("llama.block_count", shape.n_layer),
                ("llama.feed_forward_length", shape.n_ff),
                ("llama.attention.head_count", shape.n_head),
                ("llama.attention.head_count_kv", shape.n_head_kv),
                ("llama.rope.dimension_count", shape.head_dim()),
                ("llama.vocab_size", shape.n_vocab),
                ("tokenizer.ggml.bos_token_id", 1),
                ("tokenizer.ggml.eos_token_id", 2),
                ("tokenizer.ggml.unknown_token_id", 0),
            ] {
                assert_eq!(f.get(key), Some(&Value::U32(want)), "{key}");
            }
            assert_eq!(f.get("llama.rope.freq_base"), Some(&Value::F32(shape.rope_theta)));
            assert_eq!(f.get("llama.attention.layer_norm_rms_epsilon"), Some(&Value::F32(shape.rms_norm_eps)));
            assert_eq!(f.get_str("tokenizer.ggml.model"), Some("llama"));
            assert_eq!(f.get_bool("tokenizer.ggml.add_bos_token"), Some(true));
            assert_eq!(f.get_bool("tokenizer.ggml.add_eos_token"), Some(false));
            assert_eq!(f.get_u64(KEY_SEED), Some(7));
            assert_eq!(f.get_str(KEY_NAME), Some("test-model"));
            for key in ["tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"] {
                assert_eq!(f.get_array(key).map(<[Value]>::len), Some(shape.n_vocab as usize), "{key}");
            }
            // Names, dims and types as llama.cpp expects them.
            let t = |name: &str| f.tensor(name).unwrap_or_else(|| panic!("missing {name}"));
            let (e, kv) = (u64::from(shape.n_embd), shape.n_embd_kv());
            assert_eq!(t("token_embd.weight").dims, [e, u64::from(shape.n_vocab)]);
            assert_eq!(t("token_embd.weight").ggml_type, wt.ggml_type());
            assert_eq!(f.tensor("output.weight").is_some(), !tie);
            assert_eq!(t("output_norm.weight").ggml_type, GgmlType::F32);
            assert_eq!(t("blk.1.attn_k.weight").dims, [e, kv]);
            assert_eq!(t("blk.1.ffn_down.weight").dims, [u64::from(shape.n_ff), e]);
            assert_eq!(t("blk.0.ffn_gate.weight").dims, [e, u64::from(shape.n_ff)]);
            assert_eq!(f.tensor("blk.0.attn_v.bias").map(|t| t.dims.clone()), bias.then(|| vec![kv]));
            // Norms are ones; matrices are finite, small and not constant.
            let bytes = std::fs::read(&p).unwrap();
            let data = |name: &str| {
                let t = t(name);
                let start = (f.data_offset + t.offset) as usize;
                bytes[start..start + t.n_bytes as usize].to_vec()
            };
            assert!(f32s(&data("blk.0.ffn_norm.weight")).iter().all(|&x| x == 1.0));
            let m: Vec<f32> = match wt {
                WeightType::F32 => f32s(&data("blk.0.attn_q.weight")),
                _ => data("blk.0.attn_q.weight")
                    .chunks_exact(2)
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect(),
            };
            assert!(m.iter().all(|x| x.is_finite() && x.abs() < 0.05));
            let mean = m.iter().sum::<f32>() / m.len() as f32;
            let std = (m.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / m.len() as f32).sqrt();
            assert!(mean.abs() < 0.002 && (std - 0.02).abs() < 0.002, "mean {mean} std {std}");
        }
    }

    #[test]
    fn deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (dir.path().join("a.gguf"), dir.path().join("b.gguf"), dir.path().join("c.gguf"));
        let sp = spec(Shape::tiny(), 42, WeightType::F16);
        write_gguf(&sp, &a).unwrap();
        // A different thread count must not change the bytes.
        rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| write_gguf(&sp, &b)).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        write_gguf(&spec(Shape::tiny(), 43, WeightType::F16), &c).unwrap();
        assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap());
        // Only the seed key and the weights differ.
        let (fa, fc) = (GgufFile::open(&a).unwrap(), GgufFile::open(&c).unwrap());
        assert_eq!(fa.tensors, fc.tensors);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    }

    #[test]
    fn chunked_generation_is_stable_across_chunks() {
        // Tensors larger than one chunk: chunks get distinct streams.
        let mut buf = vec![0u8; 4 * (CHUNK_ELEMS * 2 + 10)];
        fill_tensor(&mut buf, GgmlType::F32, TensorKind::Matrix, 1, 5);
        let v = f32s(&buf);
        assert_ne!(v[..16], v[CHUNK_ELEMS..CHUNK_ELEMS + 16]);
        assert!(v.iter().all(|x| x.is_finite() && x.abs() <= MATRIX_HALF_WIDTH));
        let mut again = vec![0u8; buf.len()];
        fill_tensor(&mut again, GgmlType::F32, TensorKind::Matrix, 1, 5);
        assert_eq!(buf, again);
        fill_tensor(&mut again, GgmlType::F32, TensorKind::Matrix, 1, 6);
        assert_ne!(buf, again);
    }

    #[test]
    fn invalid_shape_is_rejected_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.gguf");
        let err = write_gguf(&spec(Shape { n_head_kv: 3, ..Shape::tiny() }, 1, WeightType::F32), &p).unwrap_err();
        assert!(matches!(err, SynthError::InvalidShape { field: "n_head_kv", .. }), "{err}");
        assert!(!p.exists());
    }

    #[test]
    fn spec_helpers() {
        let sp = SynthConfig::from_preset(Preset::TinyLlama1_1B, 1, WeightType::F16);
        assert_eq!(sp.name, "tinyllama-1.1b");
        // 2 bytes per matrix weight, 4 per norm weight.
        let norms = 2048 * (1 + 2 * 22);
        assert_eq!(sp.data_bytes(), (1_100_048_384 - norms) * 2 + norms * 4);
    }
}
