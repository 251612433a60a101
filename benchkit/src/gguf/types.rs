//! ggml tensor types (`enum ggml_type`) with their block geometry.
//!
//! Ids, names, block sizes and block byte sizes are facts of the GGUF format as defined by the
//! ggml version benchkit builds against; ids that ggml removed (4, 5, 31-33, 36-38) are not
//! types and [`GgmlType::from_id`] rejects them.

/// A ggml tensor element type, as stored in a GGUF tensor table.
///
/// Serialized (serde) by its ggml name, e.g. `"q4_K"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    /// 32-bit IEEE float.
    #[serde(rename = "f32")]
    F32,
    /// 16-bit IEEE float.
    #[serde(rename = "f16")]
    F16,
    /// 4-bit, blocks of 32 with one f16 scale.
    #[serde(rename = "q4_0")]
    Q4_0,
    /// 4-bit, blocks of 32 with f16 scale and min.
    #[serde(rename = "q4_1")]
    Q4_1,
    /// 5-bit, blocks of 32 with one f16 scale.
    #[serde(rename = "q5_0")]
    Q5_0,
    /// 5-bit, blocks of 32 with f16 scale and min.
    #[serde(rename = "q5_1")]
    Q5_1,
    /// 8-bit, blocks of 32 with one f16 scale.
    #[serde(rename = "q8_0")]
    Q8_0,
    /// 8-bit, blocks of 32 with f16 scale and sum (intermediate type).
    #[serde(rename = "q8_1")]
    Q8_1,
    /// 2-bit k-quant (super-blocks of 256).
    #[serde(rename = "q2_K")]
    Q2_K,
    /// 3-bit k-quant.
    #[serde(rename = "q3_K")]
    Q3_K,
    /// 4-bit k-quant.
    #[serde(rename = "q4_K")]
    Q4_K,
    /// 5-bit k-quant.
    #[serde(rename = "q5_K")]
    Q5_K,
    /// 6-bit k-quant.
    #[serde(rename = "q6_K")]
    Q6_K,
    /// 8-bit k-quant (intermediate type).
    #[serde(rename = "q8_K")]
    Q8_K,
    /// 2.06 bits per weight i-quant.
    #[serde(rename = "iq2_xxs")]
    IQ2_XXS,
    /// 2.31 bits per weight i-quant.
    #[serde(rename = "iq2_xs")]
    IQ2_XS,
    /// 3.06 bits per weight i-quant.
    #[serde(rename = "iq3_xxs")]
    IQ3_XXS,
    /// 1.56 bits per weight i-quant.
    #[serde(rename = "iq1_s")]
    IQ1_S,
    /// 4-bit non-linear, blocks of 32.
    #[serde(rename = "iq4_nl")]
    IQ4_NL,
    /// 3.44 bits per weight i-quant.
    #[serde(rename = "iq3_s")]
    IQ3_S,
    /// 2.5 bits per weight i-quant.
    #[serde(rename = "iq2_s")]
    IQ2_S,
    /// 4.25 bits per weight non-linear i-quant.
    #[serde(rename = "iq4_xs")]
    IQ4_XS,
    /// 8-bit integer.
    #[serde(rename = "i8")]
    I8,
    /// 16-bit integer.
    #[serde(rename = "i16")]
    I16,
    /// 32-bit integer.
    #[serde(rename = "i32")]
    I32,
    /// 64-bit integer.
    #[serde(rename = "i64")]
    I64,
    /// 64-bit IEEE float.
    #[serde(rename = "f64")]
    F64,
    /// 1.75 bits per weight i-quant.
    #[serde(rename = "iq1_m")]
    IQ1_M,
    /// bfloat16.
    #[serde(rename = "bf16")]
    BF16,
    /// Ternary, 1.69 bits per weight.
    #[serde(rename = "tq1_0")]
    TQ1_0,
    /// Ternary, 2.06 bits per weight.
    #[serde(rename = "tq2_0")]
    TQ2_0,
    /// MXFP4 (blocks of 32 with an E8M0 scale).
    #[serde(rename = "mxfp4")]
    MXFP4,
    /// NVFP4 (blocks of 64 with E4M3 sub-block scales).
    #[serde(rename = "nvfp4")]
    NVFP4,
    /// 1-bit, blocks of 128 with one f16 scale.
    #[serde(rename = "q1_0")]
    Q1_0,
    /// 2-bit, blocks of 64 with one f16 scale.
    #[serde(rename = "q2_0")]
    Q2_0,
}

/// Per type: (variant, ggml id, ggml name, elements per block, bytes per block).
const TABLE: &[(GgmlType, u32, &str, u64, u64)] = &[
    (GgmlType::F32, 0, "f32", 1, 4),
    (GgmlType::F16, 1, "f16", 1, 2),
    (GgmlType::Q4_0, 2, "q4_0", 32, 18),
    (GgmlType::Q4_1, 3, "q4_1", 32, 20),
    (GgmlType::Q5_0, 6, "q5_0", 32, 22),
    (GgmlType::Q5_1, 7, "q5_1", 32, 24),
    (GgmlType::Q8_0, 8, "q8_0", 32, 34),
    (GgmlType::Q8_1, 9, "q8_1", 32, 36),
    (GgmlType::Q2_K, 10, "q2_K", 256, 84),
    (GgmlType::Q3_K, 11, "q3_K", 256, 110),
    (GgmlType::Q4_K, 12, "q4_K", 256, 144),
    (GgmlType::Q5_K, 13, "q5_K", 256, 176),
    (GgmlType::Q6_K, 14, "q6_K", 256, 210),
    (GgmlType::Q8_K, 15, "q8_K", 256, 292),
    (GgmlType::IQ2_XXS, 16, "iq2_xxs", 256, 66),
    (GgmlType::IQ2_XS, 17, "iq2_xs", 256, 74),
    (GgmlType::IQ3_XXS, 18, "iq3_xxs", 256, 98),
    (GgmlType::IQ1_S, 19, "iq1_s", 256, 50),
    (GgmlType::IQ4_NL, 20, "iq4_nl", 32, 18),
    (GgmlType::IQ3_S, 21, "iq3_s", 256, 110),
    (GgmlType::IQ2_S, 22, "iq2_s", 256, 82),
    (GgmlType::IQ4_XS, 23, "iq4_xs", 256, 136),
    (GgmlType::I8, 24, "i8", 1, 1),
    (GgmlType::I16, 25, "i16", 1, 2),
    (GgmlType::I32, 26, "i32", 1, 4),
    (GgmlType::I64, 27, "i64", 1, 8),
    (GgmlType::F64, 28, "f64", 1, 8),
    (GgmlType::IQ1_M, 29, "iq1_m", 256, 56),
    (GgmlType::BF16, 30, "bf16", 1, 2),
    (GgmlType::TQ1_0, 34, "tq1_0", 256, 54),
    (GgmlType::TQ2_0, 35, "tq2_0", 256, 66),
    (GgmlType::MXFP4, 39, "mxfp4", 32, 17),
    (GgmlType::NVFP4, 40, "nvfp4", 64, 36),
    (GgmlType::Q1_0, 41, "q1_0", 128, 18),
    (GgmlType::Q2_0, 42, "q2_0", 64, 18),
];

/// One past the largest id ggml defines (`GGML_TYPE_COUNT`).
pub const GGML_TYPE_COUNT: u32 = 43;

impl GgmlType {
    /// Every type, in id order.
    pub fn all() -> impl Iterator<Item = GgmlType> {
        TABLE.iter().map(|row| row.0)
    }

    fn row(self) -> &'static (GgmlType, u32, &'static str, u64, u64) {
        // The table lists every variant exactly once (checked by a unit test).
        TABLE.iter().find(|row| row.0 == self).unwrap_or(&TABLE[0])
    }

    /// The type with this ggml id; `None` for ids ggml never defined or removed (4, 5, 31-33, 36-38).
    pub fn from_id(id: u32) -> Option<Self> {
        TABLE.iter().find(|row| row.1 == id).map(|row| row.0)
    }

    /// The type with this ggml name (case-insensitive, e.g. `"q4_k"`, `"F16"`).
    pub fn from_name(name: &str) -> Option<Self> {
        TABLE.iter().find(|row| row.2.eq_ignore_ascii_case(name)).map(|row| row.0)
    }

    /// The ggml id (`enum ggml_type` value).
    pub fn id(self) -> u32 {
        self.row().1
    }

    /// The name ggml gives the type, e.g. `"q4_0"`, `"q4_K"`, `"f16"`.
    pub fn name(self) -> &'static str {
        self.row().2
    }

    /// Elements per block (1 for plain types).
    pub fn block_size(self) -> u64 {
        self.row().3
    }

    /// Bytes per block.
    pub fn type_size(self) -> u64 {
        self.row().4
    }

    /// Whether the type stores weights in quantized blocks (block size > 1).
    pub fn is_quantized(self) -> bool {
        self.block_size() > 1
    }

    /// Bytes of a row of `ne0` elements; `None` if `ne0` is not a multiple of the block size
    /// (or the size overflows).
    pub fn row_bytes(self, ne0: u64) -> Option<u64> {
        if ne0 % self.block_size() != 0 {
            return None;
        }
        (ne0 / self.block_size()).checked_mul(self.type_size())
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        let mut ids = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        for t in GgmlType::all() {
            assert!(ids.insert(t.id()), "duplicate id {}", t.id());
            assert!(names.insert(t.name()), "duplicate name {}", t.name());
            assert_eq!(GgmlType::from_id(t.id()), Some(t));
            assert_eq!(GgmlType::from_name(t.name()), Some(t));
            assert!(t.id() < GGML_TYPE_COUNT);
            assert!(t.block_size() > 0 && t.type_size() > 0);
        }
        assert_eq!(ids.len(), 35);
    }

    #[test]
    fn removed_and_unknown_ids() {
        for id in [4, 5, 31, 32, 33, 36, 37, 38, GGML_TYPE_COUNT, u32::MAX] {
            assert_eq!(GgmlType::from_id(id), None, "id {id}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(GgmlType::F32.row_bytes(10), Some(40));
        assert_eq!(GgmlType::F16.row_bytes(10), Some(20));
        assert_eq!(GgmlType::Q4_0.row_bytes(64), Some(36));
        assert_eq!(GgmlType::Q4_0.row_bytes(33), None);
        assert_eq!(GgmlType::Q4_K.row_bytes(512), Some(288));
        assert_eq!(GgmlType::Q6_K.row_bytes(128), None);
        assert_eq!(GgmlType::Q4_K.name(), "q4_K");
        assert_eq!(GgmlType::BF16.id(), 30);
        assert_eq!(GgmlType::F16.to_string(), "f16");
        assert!(GgmlType::Q8_0.is_quantized() && !GgmlType::F16.is_quantized());
    }
}
