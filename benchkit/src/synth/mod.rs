//! Synthetic llama-architecture models of any shape, with deterministic random weights.
//!
//! Inference speed depends on a model's shape and quantization, not on its weights' values, so
//! a synthetic model with a well-known shape lets users benchmark a model they have not
//! downloaded. [`write_gguf`] writes F32/F16 weights; [`cached_model`] also quantizes (through
//! llama.cpp's quantize API) and caches the result.

mod cache;
mod shape;
mod tokenizer;

pub use cache::{
    cache_dir, cache_file_name, cached_model, cached_model_in, default_model, preset_spec, DEFAULT_PRESET,
    DEFAULT_QUANT, DEFAULT_SEED,
};
pub use shape::{Preset, Shape, MIN_VOCAB};

use crate::gguf::{GgmlType, GgufError, GgufWriter, Value};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Errors generating a synthetic model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    /// The shape is not a valid model.
    #[error("invalid shape: {field}: {reason}")]
    InvalidShape {
        /// Offending field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// No preset of that name.
    #[error("unknown preset {name:?}; known presets: {known:?}")]
    UnknownPreset {
        /// Name given.
        name: String,
        /// Known names.
        known: Vec<&'static str>,
    },
    /// Writing the file failed.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// Quantizing failed.
    #[error(transparent)]
    Quantize(#[from] crate::quantize::QuantizeError),
    /// Cache directory I/O failed.
    #[error("cannot write to {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Type of the written weight matrices (1-D norms and biases are always F32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum WeightType {
    /// 32-bit floats.
    F32,
    /// 16-bit floats.
    F16,
}

/// What to write.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SynthSpec {
    /// Model name (`general.name`), usually the preset's.
    pub name: String,
    /// Shape.
    pub shape: Shape,
    /// Weight seed.
    pub seed: u64,
    /// Matrix type.
    pub weight_type: WeightType,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// What a tensor is filled with.
#[derive(Clone, Copy)]
enum Fill {
    Ones,
    Uniform(f32),
}

const CHUNK: usize = 1 << 16;

/// Fills `buf` (elements of `ty`) deterministically from `seed`, chunks in parallel.
fn fill_tensor(buf: &mut [u8], ty: GgmlType, fill: Fill, seed: u64) {
    let elem = ty.type_size() as usize;
    buf.par_chunks_mut(CHUNK * elem).enumerate().for_each(|(ci, chunk)| {
        let mut state = splitmix(seed ^ splitmix(ci as u64));
        for out in chunk.chunks_exact_mut(elem) {
            let v = match fill {
                Fill::Ones => 1.0,
                Fill::Uniform(a) => {
                    // xorshift64*: fast, and weights' values do not matter for speed.
                    state ^= state >> 12;
                    state ^= state << 25;
                    state ^= state >> 27;
                    let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
                    ((r >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * a
                }
            };
            if elem == 2 {
                out.copy_from_slice(&half::f16::from_f32(v).to_le_bytes());
            } else {
                out.copy_from_slice(&v.to_le_bytes());
            }
        }
    });
}

/// Writes the model described by `spec` to `path`. Deterministic: the same spec gives a
/// byte-identical file.
///
/// # Errors
/// [`SynthError::InvalidShape`] for a bad shape, [`SynthError::Gguf`] when writing fails.
pub fn write_gguf(spec: &SynthSpec, path: &Path) -> Result<(), SynthError> {
    let s = &spec.shape;
    s.validate()?;
    let (e, kv, ff, vocab) = (u64::from(s.n_embd), s.n_embd_kv(), u64::from(s.n_ff), u64::from(s.n_vocab));
    let wt = match spec.weight_type {
        WeightType::F32 => GgmlType::F32,
        WeightType::F16 => GgmlType::F16,
    };
    let (tokens, scores, types) = tokenizer::vocab(s.n_vocab as usize);

    let mut w = GgufWriter::new();
    let u32v = Value::U32;
    w.add_kv("general.architecture", Value::String("llama".into()))
        .add_kv("general.name", Value::String(spec.name.clone()))
        .add_kv("general.file_type", u32v(if wt == GgmlType::F16 { 1 } else { 0 }))
        .add_kv("llama.context_length", u32v(s.n_ctx_train))
        .add_kv("llama.embedding_length", u32v(s.n_embd))
        .add_kv("llama.block_count", u32v(s.n_layer))
        .add_kv("llama.feed_forward_length", u32v(s.n_ff))
        .add_kv("llama.attention.head_count", u32v(s.n_head))
        .add_kv("llama.attention.head_count_kv", u32v(s.n_head_kv))
        .add_kv("llama.rope.freq_base", Value::F32(s.rope_theta))
        .add_kv("llama.attention.layer_norm_rms_epsilon", Value::F32(s.rms_norm_eps))
        .add_kv("llama.rope.dimension_count", u32v(s.head_dim()))
        .add_kv("llama.vocab_size", u32v(s.n_vocab))
        .add_kv("tokenizer.ggml.model", Value::String("llama".into()))
        .add_kv("tokenizer.ggml.tokens", Value::Array(tokens.into_iter().map(Value::String).collect()))
        .add_kv("tokenizer.ggml.scores", Value::Array(scores.into_iter().map(Value::F32).collect()))
        .add_kv("tokenizer.ggml.token_type", Value::Array(types.into_iter().map(Value::I32).collect()))
        .add_kv("tokenizer.ggml.bos_token_id", u32v(1))
        .add_kv("tokenizer.ggml.eos_token_id", u32v(2))
        .add_kv("tokenizer.ggml.unknown_token_id", u32v(0))
        .add_kv("tokenizer.ggml.add_bos_token", Value::Bool(true))
        .add_kv("tokenizer.ggml.add_eos_token", Value::Bool(false))
        .add_kv("benchkit.synth.seed", Value::U64(spec.seed))
        .add_kv("benchkit.synth.preset_or_name", Value::String(spec.name.clone()));

    let std = 0.02f32;
    let uniform = Fill::Uniform(std * 3f32.sqrt());
    let mut fills = Vec::new();
    let mut add = |w: &mut GgufWriter, name: String, dims: &[u64], ty: GgmlType, fill: Fill| -> Result<(), SynthError> {
        w.add_tensor(name, dims, ty)?;
        fills.push(fill);
        Ok(())
    };
    add(&mut w, "token_embd.weight".into(), &[e, vocab], wt, uniform)?;
    add(&mut w, "output_norm.weight".into(), &[e], GgmlType::F32, Fill::Ones)?;
    if !s.tie_embeddings {
        add(&mut w, "output.weight".into(), &[e, vocab], wt, uniform)?;
    }
    for i in 0..s.n_layer {
        let n = |t: &str| format!("blk.{i}.{t}");
        add(&mut w, n("attn_norm.weight"), &[e], GgmlType::F32, Fill::Ones)?;
        add(&mut w, n("attn_q.weight"), &[e, e], wt, uniform)?;
        add(&mut w, n("attn_k.weight"), &[e, kv], wt, uniform)?;
        add(&mut w, n("attn_v.weight"), &[e, kv], wt, uniform)?;
        if s.attn_qkv_bias {
            add(&mut w, n("attn_q.bias"), &[e], GgmlType::F32, uniform)?;
            add(&mut w, n("attn_k.bias"), &[kv], GgmlType::F32, uniform)?;
            add(&mut w, n("attn_v.bias"), &[kv], GgmlType::F32, uniform)?;
        }
        add(&mut w, n("attn_output.weight"), &[e, e], wt, uniform)?;
        add(&mut w, n("ffn_norm.weight"), &[e], GgmlType::F32, Fill::Ones)?;
        add(&mut w, n("ffn_gate.weight"), &[e, ff], wt, uniform)?;
        add(&mut w, n("ffn_up.weight"), &[e, ff], wt, uniform)?;
        add(&mut w, n("ffn_down.weight"), &[ff, e], wt, uniform)?;
    }
    let seed = spec.seed;
    w.write(path, |i, t, buf| {
        fill_tensor(buf, t.ggml_type, fills[i], splitmix(seed ^ splitmix(i as u64 + 1)));
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::GgufFile;

    #[test]
    fn preset_parameter_counts_match_the_real_models() {
        assert_eq!(Preset::TinyLlama1_1B.shape().n_params(), 1_100_048_384);
        assert_eq!(Preset::Llama3_2_1B.shape().n_params(), 1_235_814_400);
        assert_eq!(Preset::Llama3_1_8B.shape().n_params(), 8_030_261_248);
        assert_eq!(Preset::Qwen2_5_0_5B.shape().n_params(), 494_032_768);
        for p in Preset::ALL {
            p.shape().validate().unwrap();
            assert_eq!(Preset::from_name(&p.name().to_uppercase()).unwrap(), *p);
        }
        match Preset::from_name("gpt-5") {
            Err(SynthError::UnknownPreset { known, .. }) => assert!(known.contains(&"tinyllama-1.1b")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        let cases: [(&str, Shape); 5] = [
            ("n_embd", Shape { n_embd: 0, ..Shape::tiny() }),
            ("n_head", Shape { n_head: 3, ..Shape::tiny() }),
            ("n_head_kv", Shape { n_head_kv: 3, ..Shape::tiny() }),
            ("n_vocab", Shape { n_vocab: 100, ..Shape::tiny() }),
            ("rope_theta", Shape { rope_theta: f32::NAN, ..Shape::tiny() }),
        ];
        for (field, shape) in cases {
            match shape.validate() {
                Err(SynthError::InvalidShape { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn writes_deterministic_valid_files() {
        let dir = tempfile::tempdir().unwrap();
        for bias in [false, true] {
            let shape = Shape { attn_qkv_bias: bias, tie_embeddings: bias, ..Shape::tiny() };
            let spec = SynthSpec { name: "t".into(), shape, seed: 7, weight_type: WeightType::F16 };
            let (a, b) = (dir.path().join("a.gguf"), dir.path().join("b.gguf"));
            write_gguf(&spec, &a).unwrap();
            write_gguf(&spec, &b).unwrap();
            assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
            let f = GgufFile::open(&a).unwrap();
            assert_eq!(f.n_params(), shape.n_params());
            let per_layer = 9 + if bias { 3 } else { 0 };
            assert_eq!(f.tensors.len() as u32, 2 + u32::from(!shape.tie_embeddings) + per_layer * shape.n_layer);
            assert_eq!(f.architecture(), Some("llama"));
            assert_eq!(f.get("tokenizer.ggml.tokens").unwrap().as_array().unwrap().len(), 512);
            write_gguf(&SynthSpec { seed: 8, ..spec.clone() }, &b).unwrap();
            assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        }
    }
}
