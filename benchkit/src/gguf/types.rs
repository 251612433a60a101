//! ggml tensor types, with sizes taken from the linked ggml so they always match it.

use llama_sys as sys;

/// A ggml tensor type (`enum ggml_type`), restricted to ids the linked ggml supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GgmlType(u32);

impl GgmlType {
    /// 32-bit float.
    pub const F32: GgmlType = GgmlType(sys::GGML_TYPE_F32);
    /// 16-bit float.
    pub const F16: GgmlType = GgmlType(sys::GGML_TYPE_F16);
    /// bfloat16.
    pub const BF16: GgmlType = GgmlType(sys::GGML_TYPE_BF16);
    /// 4-bit, legacy.
    pub const Q4_0: GgmlType = GgmlType(sys::GGML_TYPE_Q4_0);
    /// 4-bit with min, legacy.
    pub const Q4_1: GgmlType = GgmlType(sys::GGML_TYPE_Q4_1);
    /// 5-bit, legacy.
    pub const Q5_0: GgmlType = GgmlType(sys::GGML_TYPE_Q5_0);
    /// 5-bit with min, legacy.
    pub const Q5_1: GgmlType = GgmlType(sys::GGML_TYPE_Q5_1);
    /// 8-bit.
    pub const Q8_0: GgmlType = GgmlType(sys::GGML_TYPE_Q8_0);
    /// 4-bit k-quant.
    pub const Q4_K: GgmlType = GgmlType(sys::GGML_TYPE_Q4_K);
    /// 6-bit k-quant.
    pub const Q6_K: GgmlType = GgmlType(sys::GGML_TYPE_Q6_K);
    /// 4-bit non-linear.
    pub const IQ4_NL: GgmlType = GgmlType(sys::GGML_TYPE_IQ4_NL);

    /// The type with this id, if the linked ggml supports it (removed ids return `None`).
    pub fn from_id(id: u32) -> Option<Self> {
        if id >= sys::GGML_TYPE_COUNT {
            return None;
        }
        // SAFETY: id < GGML_TYPE_COUNT indexes ggml's static type table.
        let blck = unsafe { sys::ggml_blck_size(id) };
        (blck > 0).then_some(GgmlType(id))
    }

    /// Parses ggml's name (`f16`, `q8_0`, `q4_0`, ...), case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        (0..sys::GGML_TYPE_COUNT).filter_map(Self::from_id).find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// The numeric id.
    pub fn id(self) -> u32 {
        self.0
    }

    /// ggml's name, e.g. `q4_0`.
    pub fn name(self) -> &'static str {
        // SAFETY: valid id (constructed through from_id or a constant); ggml returns a static string.
        let p = unsafe { sys::ggml_type_name(self.0) };
        if p.is_null() {
            return "unknown";
        }
        // SAFETY: static NUL-terminated string owned by ggml for the process lifetime.
        unsafe { std::ffi::CStr::from_ptr(p) }.to_str().unwrap_or("unknown")
    }

    /// Elements per block.
    pub fn block_size(self) -> u64 {
        // SAFETY: valid id.
        unsafe { sys::ggml_blck_size(self.0) as u64 }
    }

    /// Bytes per block.
    pub fn type_size(self) -> u64 {
        // SAFETY: valid id.
        unsafe { sys::ggml_type_size(self.0) as u64 }
    }

    /// Bytes of a row of `ne0` elements, `None` if `ne0` is not a multiple of the block size.
    pub fn row_bytes(self, ne0: u64) -> Option<u64> {
        let b = self.block_size();
        (ne0 % b == 0).then(|| ne0 / b * self.type_size())
    }

    /// Whether this is a quantized (block) type.
    pub fn is_quantized(self) -> bool {
        self.block_size() > 1
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for GgmlType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for GgmlType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        GgmlType::from_name(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown ggml type {s:?}")))
    }
}
