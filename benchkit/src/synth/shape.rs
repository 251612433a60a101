//! Model shapes and named presets.

use super::SynthError;

/// The shape of a llama-architecture model: the numbers benchmark users quote for a model.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    /// Embedding width.
    pub n_embd: u32,
    /// Transformer blocks.
    pub n_layer: u32,
    /// Attention heads.
    pub n_head: u32,
    /// KV heads (grouped-query attention).
    pub n_head_kv: u32,
    /// Feed-forward width.
    pub n_ff: u32,
    /// Vocabulary size.
    pub n_vocab: u32,
    /// Training context length.
    pub n_ctx_train: u32,
    /// RoPE base frequency.
    pub rope_theta: f32,
    /// RMS norm epsilon.
    pub rms_norm_eps: f32,
    /// Output projection shares the token embedding (no `output.weight`).
    pub tie_embeddings: bool,
    /// Q/K/V projections have biases (Qwen2-style).
    pub attn_qkv_bias: bool,
}

/// Smallest vocabulary the built-in tokenizer needs: 3 specials, 256 byte tokens, 1 piece.
pub const MIN_VOCAB: u32 = 3 + 256 + 1;

impl Shape {
    /// A tiny shape for tests (loads in milliseconds).
    pub fn tiny() -> Self {
        Shape {
            n_embd: 64,
            n_layer: 2,
            n_head: 4,
            n_head_kv: 2,
            n_ff: 128,
            n_vocab: 512,
            n_ctx_train: 512,
            rope_theta: 10000.0,
            rms_norm_eps: 1e-5,
            tie_embeddings: false,
            attn_qkv_bias: false,
        }
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> u32 {
        self.n_embd / self.n_head.max(1)
    }

    /// Width of the K and V projections.
    pub fn n_embd_kv(&self) -> u64 {
        u64::from(self.head_dim()) * u64::from(self.n_head_kv)
    }

    /// Checks the shape can be written and loaded.
    ///
    /// # Errors
    /// [`SynthError::InvalidShape`] naming the field.
    pub fn validate(&self) -> Result<(), SynthError> {
        let bad = |field: &'static str, reason: String| Err(SynthError::InvalidShape { field, reason });
        for (field, v) in [
            ("n_embd", self.n_embd),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("n_head_kv", self.n_head_kv),
            ("n_ff", self.n_ff),
            ("n_ctx_train", self.n_ctx_train),
        ] {
            if v == 0 {
                return bad(field, "must be > 0".into());
            }
        }
        if self.n_embd % self.n_head != 0 {
            return bad("n_head", format!("{} does not divide n_embd {}", self.n_head, self.n_embd));
        }
        if self.n_head % self.n_head_kv != 0 {
            return bad("n_head_kv", format!("{} does not divide n_head {}", self.n_head_kv, self.n_head));
        }
        if self.head_dim() % 2 != 0 {
            return bad("n_head", format!("head dimension {} must be even for RoPE", self.head_dim()));
        }
        if self.n_vocab < MIN_VOCAB {
            return bad("n_vocab", format!("{} is below the tokenizer's minimum {MIN_VOCAB}", self.n_vocab));
        }
        if self.n_vocab > i32::MAX as u32 {
            return bad("n_vocab", "too large".into());
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return bad("rope_theta", format!("{} must be finite and > 0", self.rope_theta));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            return bad("rms_norm_eps", format!("{} must be finite and > 0", self.rms_norm_eps));
        }
        Ok(())
    }

    /// Exact parameter count of the written model (what `llama_model_n_params` reports).
    pub fn n_params(&self) -> u64 {
        let e = u64::from(self.n_embd);
        let kv = self.n_embd_kv();
        let vocab = u64::from(self.n_vocab) * e;
        let per_layer = 2 * e // attn_norm, ffn_norm
            + 2 * e * e // q, o
            + 2 * e * kv // k, v
            + 3 * e * u64::from(self.n_ff) // gate, up, down
            + if self.attn_qkv_bias { e + 2 * kv } else { 0 };
        vocab * if self.tie_embeddings { 1 } else { 2 } + e + per_layer * u64::from(self.n_layer)
    }
}

/// Well-known model shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Preset {
    /// TinyLlama-1.1B (1,100,048,384 params).
    TinyLlama1_1B,
    /// Llama-3.2-1B (tied embeddings, 1,235,814,400 params).
    Llama3_2_1B,
    /// Llama-3.1-8B (8,030,261,248 params).
    Llama3_1_8B,
    /// Qwen2.5-0.5B's shape (tied, QKV biases, 494,032,768 params), as llama architecture.
    Qwen2_5_0_5B,
    /// A tiny shape for tests.
    Tiny,
}

impl Preset {
    /// Every preset.
    pub const ALL: &'static [Preset] =
        &[Preset::TinyLlama1_1B, Preset::Llama3_2_1B, Preset::Llama3_1_8B, Preset::Qwen2_5_0_5B, Preset::Tiny];

    /// Name used on command lines.
    pub fn name(self) -> &'static str {
        match self {
            Preset::TinyLlama1_1B => "tinyllama-1.1b",
            Preset::Llama3_2_1B => "llama-3.2-1b",
            Preset::Llama3_1_8B => "llama-3.1-8b",
            Preset::Qwen2_5_0_5B => "qwen2.5-0.5b",
            Preset::Tiny => "tiny",
        }
    }

    /// Parses a name, case-insensitively.
    ///
    /// # Errors
    /// [`SynthError::UnknownPreset`] listing the known names.
    pub fn from_name(s: &str) -> Result<Self, SynthError> {
        Preset::ALL
            .iter()
            .copied()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| SynthError::UnknownPreset { name: s.into(), known: Preset::ALL.iter().map(|p| p.name()).collect() })
    }

    /// One-line description.
    pub fn description(self) -> &'static str {
        match self {
            Preset::TinyLlama1_1B => "TinyLlama-1.1B shape: 22 layers, 2048 wide, GQA 32/4, vocab 32000",
            Preset::Llama3_2_1B => "Llama-3.2-1B shape: 16 layers, 2048 wide, GQA 32/8, vocab 128256, tied",
            Preset::Llama3_1_8B => "Llama-3.1-8B shape: 32 layers, 4096 wide, GQA 32/8, vocab 128256",
            Preset::Qwen2_5_0_5B => "Qwen2.5-0.5B shape: 24 layers, 896 wide, GQA 14/2, vocab 151936, tied, QKV bias",
            Preset::Tiny => "tiny test shape: 2 layers, 64 wide",
        }
    }

    /// The shape.
    pub fn shape(self) -> Shape {
        let base = |n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx_train, rope_theta| Shape {
            n_embd,
            n_layer,
            n_head,
            n_head_kv,
            n_ff,
            n_vocab,
            n_ctx_train,
            rope_theta,
            rms_norm_eps: 1e-5,
            tie_embeddings: false,
            attn_qkv_bias: false,
        };
        match self {
            Preset::TinyLlama1_1B => base(2048, 22, 32, 4, 5632, 32000, 2048, 10000.0),
            Preset::Llama3_2_1B => Shape { tie_embeddings: true, ..base(2048, 16, 32, 8, 8192, 128256, 131072, 500000.0) },
            Preset::Llama3_1_8B => base(4096, 32, 32, 8, 14336, 128256, 131072, 500000.0),
            Preset::Qwen2_5_0_5B => Shape {
                tie_embeddings: true,
                attn_qkv_bias: true,
                rms_norm_eps: 1e-6,
                ..base(896, 24, 14, 2, 4864, 151936, 32768, 1_000_000.0)
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
