//! Model shapes, their tensor layout, and named presets of well-known models.

use super::SynthError;

/// The shape of a llama-architecture model: everything that decides its inference cost.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    /// Embedding (hidden) width.
    pub n_embd: u32,
    /// Number of transformer blocks.
    pub n_layer: u32,
    /// Attention (query) heads.
    pub n_head: u32,
    /// Key/value heads (grouped-query attention; equal to `n_head` for plain multi-head).
    pub n_head_kv: u32,
    /// Feed-forward (SwiGLU) width.
    pub n_ff: u32,
    /// Vocabulary size.
    pub n_vocab: u32,
    /// Training context length (`llama.context_length`).
    pub n_ctx_train: u32,
    /// RoPE base frequency.
    pub rope_theta: f32,
    /// RMS norm epsilon.
    pub rms_norm_eps: f32,
    /// The output projection reuses the token embedding (no `output.weight` tensor).
    pub tie_embeddings: bool,
    /// The Q/K/V projections have biases (Qwen2-style).
    pub attn_qkv_bias: bool,
}

/// Smallest vocabulary the built-in tokenizer needs: 3 special tokens, 256 byte tokens and at
/// least one normal piece.
pub const MIN_VOCAB: u32 = 3 + 256 + 1;
/// Largest vocabulary accepted (far above any real model's; keeps the tokenizer in memory).
pub const MAX_VOCAB: u32 = 1 << 22;
/// Most blocks llama.cpp supports (`LLAMA_MAX_LAYERS`).
pub const MAX_LAYERS: u32 = 512;

/// What a tensor holds, which decides its type and initial values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TensorKind {
    /// A weight matrix: random, written as the spec's weight type.
    Matrix,
    /// An RMS norm weight: all ones, always F32.
    Norm,
    /// A bias: small random values, always F32.
    Bias,
}

/// One tensor of the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TensorPlan {
    pub name: String,
    /// ggml order (`ne0` first).
    pub dims: Vec<u64>,
    pub kind: TensorKind,
}

impl Shape {
    /// A tiny shape for tests: 64 wide, 2 layers, 4 heads (2 KV), FF 128, vocab 512, context 512.
    pub fn tiny() -> Self {
        Shape {
            n_embd: 64,
            n_layer: 2,
            n_head: 4,
            n_head_kv: 2,
            n_ff: 128,
            n_vocab: 512,
            n_ctx_train: 512,
            rope_theta: 10_000.0,
            rms_norm_eps: 1e-5,
            tie_embeddings: false,
            attn_qkv_bias: false,
        }
    }

    /// Width of one attention head (`n_embd / n_head`; 0 if `n_head` is 0).
    pub fn head_dim(&self) -> u32 {
        self.n_embd.checked_div(self.n_head).unwrap_or(0)
    }

    /// Width of the K and V projections (`n_head_kv * head_dim`).
    pub fn n_embd_kv(&self) -> u64 {
        u64::from(self.n_head_kv) * u64::from(self.head_dim())
    }

    /// Checks that the shape describes a model llama.cpp can load.
    ///
    /// # Errors
    /// [`SynthError::InvalidShape`] naming the offending field: a zero field, `n_head` not
    /// dividing `n_embd`, `n_head_kv` not dividing `n_head`, an odd head dimension (RoPE rotates
    /// pairs), a vocabulary smaller than [`MIN_VOCAB`] or larger than [`MAX_VOCAB`], more than
    /// [`MAX_LAYERS`] layers, a non-finite or non-positive `rope_theta`/`rms_norm_eps`, or a model
    /// too large to address.
    pub fn validate(&self) -> Result<(), SynthError> {
        let bad = |field: &'static str, reason: String| Err(SynthError::InvalidShape { field, reason });
        let fields = [
            ("n_embd", self.n_embd),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("n_head_kv", self.n_head_kv),
            ("n_ff", self.n_ff),
            ("n_vocab", self.n_vocab),
            ("n_ctx_train", self.n_ctx_train),
        ];
        if let Some((field, _)) = fields.iter().find(|(_, v)| *v == 0) {
            return bad(field, "must be greater than 0".into());
        }
        if self.n_layer > MAX_LAYERS {
            return bad("n_layer", format!("{} layers; llama.cpp supports at most {MAX_LAYERS}", self.n_layer));
        }
        if self.n_embd % self.n_head != 0 {
            return bad("n_head", format!("{} heads do not divide n_embd = {}", self.n_head, self.n_embd));
        }
        if self.n_head % self.n_head_kv != 0 {
            return bad("n_head_kv", format!("{} KV heads do not divide n_head = {}", self.n_head_kv, self.n_head));
        }
        if self.head_dim() % 2 != 0 {
            return bad(
                "n_head",
                format!("head dimension n_embd / n_head = {} must be even (RoPE rotates pairs)", self.head_dim()),
            );
        }
        if self.n_vocab < MIN_VOCAB {
            return bad(
                "n_vocab",
                format!("{} tokens; the built-in tokenizer needs at least {MIN_VOCAB} (3 special, 256 byte tokens, 1 piece)", self.n_vocab),
            );
        }
        if self.n_vocab > MAX_VOCAB {
            return bad("n_vocab", format!("{} tokens; at most {MAX_VOCAB} are supported", self.n_vocab));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return bad("rope_theta", format!("{} must be a positive finite number", self.rope_theta));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0 && self.rms_norm_eps < 1.0) {
            return bad("rms_norm_eps", format!("{} must be a finite number in (0, 1)", self.rms_norm_eps));
        }
        // Every tensor's size in bytes (as F32) and the total must be addressable.
        let total = self
            .plan()
            .iter()
            .try_fold(0u64, |acc, t| {
                let n = t.dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d))?;
                n.checked_mul(4).filter(|&b| b <= isize::MAX as u64)?;
                acc.checked_add(n)
            })
            .and_then(|n| n.checked_mul(4));
        if total.is_none() {
            return bad("n_layer", "the model's total size overflows".into());
        }
        Ok(())
    }

    /// Exact number of weights in the written model: the sum of all tensors' elements, which is
    /// what llama.cpp's `llama_model_n_params` reports. Saturates for shapes that fail
    /// [`validate`](Self::validate).
    pub fn n_params(&self) -> u64 {
        let e = u64::from(self.n_embd);
        let kv = self.n_embd_kv();
        let ff = u64::from(self.n_ff);
        let vocab = u64::from(self.n_vocab);
        let bias = if self.attn_qkv_bias { e + 2 * kv } else { 0 };
        // attn_norm + q + k + v + output + ffn_norm + gate/up/down (+ biases)
        let per_layer = e
            .saturating_mul(e)
            .saturating_mul(2)
            .saturating_add(e.saturating_mul(kv).saturating_mul(2))
            .saturating_add(e.saturating_mul(ff).saturating_mul(3))
            .saturating_add(2 * e + bias);
        let embd = e.saturating_mul(vocab);
        let output = if self.tie_embeddings { 0 } else { embd };
        per_layer.saturating_mul(u64::from(self.n_layer)).saturating_add(embd).saturating_add(output).saturating_add(e)
    }

    /// The tensors written for this shape, in file order, with llama.cpp's names and ggml dims.
    pub(crate) fn plan(&self) -> Vec<TensorPlan> {
        let e = u64::from(self.n_embd);
        let kv = self.n_embd_kv();
        let ff = u64::from(self.n_ff);
        let vocab = u64::from(self.n_vocab);
        let t = |name: String, dims: &[u64], kind| TensorPlan { name, dims: dims.to_vec(), kind };
        let mut out = Vec::with_capacity(3 + 12 * self.n_layer as usize);
        out.push(t("token_embd.weight".into(), &[e, vocab], TensorKind::Matrix));
        out.push(t("output_norm.weight".into(), &[e], TensorKind::Norm));
        if !self.tie_embeddings {
            out.push(t("output.weight".into(), &[e, vocab], TensorKind::Matrix));
        }
        for i in 0..self.n_layer {
            let b = |s: &str| format!("blk.{i}.{s}");
            out.push(t(b("attn_norm.weight"), &[e], TensorKind::Norm));
            out.push(t(b("attn_q.weight"), &[e, e], TensorKind::Matrix));
            out.push(t(b("attn_k.weight"), &[e, kv], TensorKind::Matrix));
            out.push(t(b("attn_v.weight"), &[e, kv], TensorKind::Matrix));
            if self.attn_qkv_bias {
                out.push(t(b("attn_q.bias"), &[e], TensorKind::Bias));
                out.push(t(b("attn_k.bias"), &[kv], TensorKind::Bias));
                out.push(t(b("attn_v.bias"), &[kv], TensorKind::Bias));
            }
            out.push(t(b("attn_output.weight"), &[e, e], TensorKind::Matrix));
            out.push(t(b("ffn_norm.weight"), &[e], TensorKind::Norm));
            out.push(t(b("ffn_gate.weight"), &[e, ff], TensorKind::Matrix));
            out.push(t(b("ffn_up.weight"), &[e, ff], TensorKind::Matrix));
            out.push(t(b("ffn_down.weight"), &[ff, e], TensorKind::Matrix));
        }
        out
    }
}

/// Shapes of well-known models (their published configs, written as llama architecture).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Preset {
    /// TinyLlama-1.1B: 22 layers, 2048 wide, GQA 32/4, vocab 32000.
    TinyLlama1_1B,
    /// Llama-3.2-1B: 16 layers, 2048 wide, GQA 32/8, vocab 128256, tied embeddings.
    Llama3_2_1B,
    /// Llama-3.1-8B: 32 layers, 4096 wide, GQA 32/8, vocab 128256.
    Llama3_1_8B,
    /// Qwen2.5-0.5B: 24 layers, 896 wide, GQA 14/2, vocab 151936, tied embeddings, QKV biases.
    Qwen2_5_0_5B,
    /// [`Shape::tiny`], for tests.
    Tiny,
}

impl Preset {
    /// Every preset.
    pub const ALL: &'static [Preset] =
        &[Preset::TinyLlama1_1B, Preset::Llama3_2_1B, Preset::Llama3_1_8B, Preset::Qwen2_5_0_5B, Preset::Tiny];

    /// The preset's name, e.g. `"tinyllama-1.1b"`.
    pub fn name(self) -> &'static str {
        match self {
            Preset::TinyLlama1_1B => "tinyllama-1.1b",
            Preset::Llama3_2_1B => "llama-3.2-1b",
            Preset::Llama3_1_8B => "llama-3.1-8b",
            Preset::Qwen2_5_0_5B => "qwen2.5-0.5b",
            Preset::Tiny => "tiny",
        }
    }

    /// The preset with this name (case-insensitive).
    ///
    /// # Errors
    /// [`SynthError::UnknownPreset`] listing the known names.
    pub fn from_name(s: &str) -> Result<Self, SynthError> {
        let wanted = s.trim();
        Preset::ALL.iter().copied().find(|p| p.name().eq_ignore_ascii_case(wanted)).ok_or_else(|| {
            SynthError::UnknownPreset { name: s.to_string(), known: Preset::ALL.iter().map(|p| p.name()).collect() }
        })
    }

    /// A one-line description.
    pub fn description(self) -> &'static str {
        match self {
            Preset::TinyLlama1_1B => "TinyLlama-1.1B shape: 22 layers, 2048 wide, 32 heads (4 KV), FF 5632, vocab 32000",
            Preset::Llama3_2_1B => {
                "Llama-3.2-1B shape: 16 layers, 2048 wide, 32 heads (8 KV), FF 8192, vocab 128256, tied embeddings"
            }
            Preset::Llama3_1_8B => "Llama-3.1-8B shape: 32 layers, 4096 wide, 32 heads (8 KV), FF 14336, vocab 128256",
            Preset::Qwen2_5_0_5B => {
                "Qwen2.5-0.5B shape (as llama): 24 layers, 896 wide, 14 heads (2 KV), FF 4864, vocab 151936, tied embeddings, QKV biases"
            }
            Preset::Tiny => "tiny test shape: 2 layers, 64 wide, 4 heads (2 KV), FF 128, vocab 512",
        }
    }

    /// The preset's shape.
    pub fn shape(self) -> Shape {
        let llama = |n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx_train, rope_theta, tie| Shape {
            n_embd,
            n_layer,
            n_head,
            n_head_kv,
            n_ff,
            n_vocab,
            n_ctx_train,
            rope_theta,
            rms_norm_eps: 1e-5,
            tie_embeddings: tie,
            attn_qkv_bias: false,
        };
        match self {
            Preset::TinyLlama1_1B => llama(2048, 22, 32, 4, 5632, 32000, 2048, 10_000.0, false),
            Preset::Llama3_2_1B => llama(2048, 16, 32, 8, 8192, 128_256, 131_072, 500_000.0, true),
            Preset::Llama3_1_8B => llama(4096, 32, 32, 8, 14336, 128_256, 131_072, 500_000.0, false),
            Preset::Qwen2_5_0_5B => Shape {
                rms_norm_eps: 1e-6,
                attn_qkv_bias: true,
                ..llama(896, 24, 14, 2, 4864, 151_936, 32768, 1_000_000.0, true)
            },
            Preset::Tiny => Shape::tiny(),
        }
    }
}

impl std::str::FromStr for Preset {
    type Err = SynthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Preset::from_name(s)
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preset_param_counts() {
        assert_eq!(Preset::TinyLlama1_1B.shape().n_params(), 1_100_048_384);
        assert_eq!(Preset::Llama3_2_1B.shape().n_params(), 1_235_814_400);
        assert_eq!(Preset::Llama3_1_8B.shape().n_params(), 8_030_261_248);
        assert_eq!(Preset::Qwen2_5_0_5B.shape().n_params(), 494_032_768);
    }

    #[test]
    fn plan_matches_n_params() {
        for p in Preset::ALL {
            let shape = p.shape();
            shape.validate().unwrap();
            let sum: u64 = shape.plan().iter().map(|t| t.dims.iter().product::<u64>()).sum();
            assert_eq!(sum, shape.n_params(), "{p}");
        }
        let mut s = Shape::tiny();
        s.attn_qkv_bias = true;
        s.tie_embeddings = true;
        let sum: u64 = s.plan().iter().map(|t| t.dims.iter().product::<u64>()).sum();
        assert_eq!(sum, s.n_params());
        assert_eq!(s.plan().len(), 2 + 12 * 2);
    }

    /// A field name and an edit that makes a valid shape invalid in that field.
    type Edit = (&'static str, fn(&mut Shape));

    #[test]
    fn validate_rejects_bad_shapes() {
        let cases: &[Edit] = &[
            ("n_embd", |s| s.n_embd = 0),
            ("n_layer", |s| s.n_layer = 0),
            ("n_layer", |s| s.n_layer = 513),
            ("n_head", |s| s.n_head = 0),
            ("n_head", |s| s.n_head = 3),
            ("n_head", |s| s.n_embd = 36),
            ("n_head_kv", |s| s.n_head_kv = 0),
            ("n_head_kv", |s| s.n_head_kv = 3),
            ("n_ff", |s| s.n_ff = 0),
            ("n_vocab", |s| s.n_vocab = 259),
            ("n_vocab", |s| s.n_vocab = u32::MAX),
            ("n_ctx_train", |s| s.n_ctx_train = 0),
            ("rope_theta", |s| s.rope_theta = f32::NAN),
            ("rope_theta", |s| s.rope_theta = -1.0),
            ("rms_norm_eps", |s| s.rms_norm_eps = 0.0),
            ("rms_norm_eps", |s| s.rms_norm_eps = f32::INFINITY),
        ];
        for &(want, edit) in cases {
            let mut s = Shape::tiny();
            edit(&mut s);
            match s.validate() {
                Err(SynthError::InvalidShape { field, reason }) => {
                    assert_eq!(field, want, "{s:?}: {reason}");
                    assert!(!reason.is_empty());
                }
                other => panic!("{s:?}: expected InvalidShape({want}), got {other:?}"),
            }
        }
        let mut s = Shape::tiny();
        s.n_vocab = MIN_VOCAB;
        s.validate().unwrap();
        // Huge but representable shapes are fine; n_params does not panic on bad ones.
        let huge = Shape { n_embd: u32::MAX - 1, n_head: 1, n_head_kv: 1, n_ff: u32::MAX, ..Shape::tiny() };
        let _ = huge.n_params();
        let _ = huge.validate();
    }

    #[test]
    fn preset_names() {
        for p in Preset::ALL {
            assert_eq!(Preset::from_name(p.name()).unwrap(), *p);
            assert_eq!(p.name().to_uppercase().parse::<Preset>().unwrap(), *p);
            assert!(!p.description().is_empty());
            assert_eq!(p.to_string(), p.name());
        }
        match Preset::from_name("gpt-5") {
            Err(SynthError::UnknownPreset { name, known }) => {
                assert_eq!(name, "gpt-5");
                assert_eq!(known, vec!["tinyllama-1.1b", "llama-3.2-1b", "llama-3.1-8b", "qwen2.5-0.5b", "tiny"]);
            }
            other => panic!("{other:?}"),
        }
        let err = "nope".parse::<Preset>().unwrap_err().to_string();
        assert!(err.contains("tinyllama-1.1b") && err.contains("nope"), "{err}");
        assert_eq!(Preset::Tiny.shape(), Shape::tiny());
    }
}
