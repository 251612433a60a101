//! Model-loading options beyond layer counts and splits: how the weights are read (load and
//! lazy modes), which devices the model may use, and tensor buffer-type overrides. Each type
//! knows llama-bench's names for its values, which records and `-lm`/`-lzm`/`-dev`/`-ot` use.

use super::ModelError;
use crate::backend::Backend;
use crate::devices::DeviceType;
use crate::util::cstr_to_string;
use llama_sys as sys;
use serde::{Deserialize, Serialize};

/// How llama.cpp reads the weights (llama-bench `-lm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LoadMode {
    /// llama.cpp picks per device (llama-bench's default).
    #[default]
    #[serde(rename = "auto")]
    Auto,
    /// Read the file into buffers, no mapping.
    #[serde(rename = "none")]
    None,
    /// Memory-map the file.
    #[serde(rename = "mmap")]
    Mmap,
    /// Read into buffers and lock them in RAM.
    #[serde(rename = "mlock")]
    Mlock,
    /// Memory-map and lock the mapping in RAM.
    #[serde(rename = "mmap+mlock")]
    MmapMlock,
    /// Direct I/O, bypassing the page cache where the platform has it.
    #[serde(rename = "dio")]
    DirectIo,
}

impl LoadMode {
    /// Every mode, in llama-bench's help order.
    pub const ALL: [LoadMode; 6] =
        [LoadMode::Auto, LoadMode::None, LoadMode::Mmap, LoadMode::Mlock, LoadMode::MmapMlock, LoadMode::DirectIo];

    /// llama.cpp's name (`llama_load_mode_name`): `auto`, `none`, `mmap`, `mlock`, `mmap+mlock`,
    /// `dio`.
    pub fn name(self) -> &'static str {
        match self {
            LoadMode::Auto => "auto",
            LoadMode::None => "none",
            LoadMode::Mmap => "mmap",
            LoadMode::Mlock => "mlock",
            LoadMode::MmapMlock => "mmap+mlock",
            LoadMode::DirectIo => "dio",
        }
    }

    /// Parses llama.cpp's name.
    pub fn from_name(s: &str) -> Option<Self> {
        LoadMode::ALL.into_iter().find(|m| m.name() == s)
    }

    pub(crate) fn raw(self) -> sys::llama_load_mode {
        match self {
            LoadMode::Auto => sys::LLAMA_LOAD_MODE_AUTO,
            LoadMode::None => sys::LLAMA_LOAD_MODE_NONE,
            LoadMode::Mmap => sys::LLAMA_LOAD_MODE_MMAP,
            LoadMode::Mlock => sys::LLAMA_LOAD_MODE_MLOCK,
            LoadMode::MmapMlock => sys::LLAMA_LOAD_MODE_MMAP_MLOCK,
            LoadMode::DirectIo => sys::LLAMA_LOAD_MODE_DIRECT_IO,
        }
    }
}

/// On-demand reading of the tensors an architecture marks as lazy (llama-bench `-lzm`); both
/// lazy settings need a memory-mapped file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LazyMode {
    /// Read every tensor whole, up front.
    Off,
    /// Lazy only for marked tensors larger than 4 GiB (llama-bench's default).
    #[default]
    Auto,
    /// Lazy for every marked tensor.
    On,
}

impl LazyMode {
    /// Every mode, in llama-bench's help order.
    pub const ALL: [LazyMode; 3] = [LazyMode::On, LazyMode::Auto, LazyMode::Off];

    /// llama-bench's name: `on`, `auto`, `off`.
    pub fn name(self) -> &'static str {
        match self {
            LazyMode::Off => "off",
            LazyMode::Auto => "auto",
            LazyMode::On => "on",
        }
    }

    /// Parses llama-bench's name.
    pub fn from_name(s: &str) -> Option<Self> {
        LazyMode::ALL.into_iter().find(|m| m.name() == s)
    }

    pub(crate) fn raw(self) -> sys::llama_lazy_mode {
        match self {
            LazyMode::Off => sys::LLAMA_LAZY_MODE_OFF,
            LazyMode::Auto => sys::LLAMA_LAZY_MODE_AUTO,
            LazyMode::On => sys::LLAMA_LAZY_MODE_ON,
        }
    }
}

/// Which devices a model may offload to (llama-bench `-dev`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DeviceSelection {
    /// llama.cpp's choice: every GPU (integrated ones when there is no discrete GPU), RPC
    /// servers first. llama-bench's `auto`.
    #[default]
    Auto,
    /// No offload device: everything runs on the CPU backend. llama-bench's `none`.
    None,
    /// These devices, by registry name (`CUDA0`, `Vulkan1`, ...), in this order; never the CPU.
    Only(Vec<String>),
}

impl DeviceSelection {
    /// The named devices, checked against the registry and spelled as it spells them
    /// (llama-bench checks `-dev` values before it runs anything).
    ///
    /// # Errors
    /// [`ModelError::NoSuchDevice`] for a name the registry lacks, [`ModelError::InvalidParam`]
    /// for an empty list or a CPU device (the CPU is not an offload device: use `none`).
    pub fn canonical(&self, _backend: &Backend) -> Result<DeviceSelection, ModelError> {
        Ok(match self {
            DeviceSelection::Only(_) => {
                let list = crate::devices::list();
                let names = self.resolve()?.into_iter().map(|i| list[i].name.clone()).collect();
                DeviceSelection::Only(names)
            }
            other => other.clone(),
        })
    }

    /// Registry indices of the named devices (empty for `Auto` and `None`).
    pub(crate) fn resolve(&self) -> Result<Vec<usize>, ModelError> {
        let DeviceSelection::Only(names) = self else {
            return Ok(Vec::new());
        };
        if names.is_empty() {
            return Err(ModelError::InvalidParam {
                name: "devices",
                reason: "an empty device list; use DeviceSelection::None for no offload device".into(),
            });
        }
        let list = crate::devices::list();
        names
            .iter()
            .map(|name| {
                // Case-insensitive, as ggml_backend_dev_by_name matches.
                let i = list.iter().position(|d| d.name.eq_ignore_ascii_case(name)).ok_or_else(|| {
                    ModelError::NoSuchDevice {
                        name: name.clone(),
                        available: list.iter().map(|d| d.name.clone()).collect(),
                    }
                })?;
                if list[i].kind == DeviceType::Cpu {
                    return Err(ModelError::InvalidParam {
                        name: "devices",
                        reason: format!(
                            "{} is the CPU backend, not an offload device (use `none` for CPU only)",
                            list[i].name
                        ),
                    });
                }
                Ok(i)
            })
            .collect()
    }
}

impl std::fmt::Display for DeviceSelection {
    /// llama-bench's `devices` field: `auto`, `none`, or the names joined by `/`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSelection::Auto => f.write_str("auto"),
            DeviceSelection::None => f.write_str("none"),
            DeviceSelection::Only(names) => f.write_str(&names.join("/")),
        }
    }
}

/// Tensors whose name matches `pattern` (a C++ `std::regex`, searched anywhere in the name) go
/// to the buffer type named `buffer_type` (llama-bench `-ot pattern=buffer_type`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TensorBuftOverride {
    /// Regular expression (ECMAScript syntax, as llama.cpp compiles it) over tensor names.
    pub pattern: String,
    /// A device's default buffer type, e.g. `CPU`, `CUDA0` (see [`buffer_type_names`]).
    pub buffer_type: String,
}

impl TensorBuftOverride {
    /// An override of `pattern` to `buffer_type`.
    pub fn new(pattern: impl Into<String>, buffer_type: impl Into<String>) -> Self {
        TensorBuftOverride { pattern: pattern.into(), buffer_type: buffer_type.into() }
    }

    /// Checks that the buffer type exists (llama-bench checks `-ot` before it runs anything).
    ///
    /// # Errors
    /// [`ModelError::NoSuchBufferType`] naming the ones that do.
    pub fn validate(&self, _backend: &Backend) -> Result<(), ModelError> {
        buffer_type(&self.buffer_type).map(|_| ())
    }

    /// llama-bench's `tensor_buft_overrides` field for a list: `none`, or
    /// `pattern=buffer_type` items joined by `;`.
    pub fn list_name(list: &[TensorBuftOverride]) -> String {
        if list.is_empty() {
            return "none".to_string();
        }
        list.iter().map(|o| format!("{}={}", o.pattern, o.buffer_type)).collect::<Vec<_>>().join(";")
    }
}

/// The buffer types `-ot` can name: each registered device's default buffer type (`CPU`,
/// `CUDA0`, ...), as llama-bench lists them. Extra buffer types such as `CPU_REPACK` are not
/// among them; llama.cpp picks those itself (`--repack`).
pub fn buffer_type_names() -> Vec<String> {
    buffer_types().into_iter().map(|(name, _)| name).collect()
}

fn buffer_types() -> Vec<(String, sys::ggml_backend_buffer_type_t)> {
    let mut out: Vec<(String, sys::ggml_backend_buffer_type_t)> = Vec::new();
    for dev in crate::devices::raw_devices() {
        // SAFETY: `dev` is a live registry handle; both calls are queries returning a static
        // buffer type (or null) and its static NUL-terminated name.
        let (buft, name) = unsafe {
            let buft = sys::ggml_backend_dev_buffer_type(dev);
            if buft.is_null() {
                continue;
            }
            (buft, cstr_to_string(sys::ggml_backend_buft_name(buft)))
        };
        if !out.iter().any(|(n, _)| *n == name) {
            out.push((name, buft));
        }
    }
    out
}

/// The buffer type named `name`, matched exactly (llama-bench looks names up exactly).
pub(crate) fn buffer_type(name: &str) -> Result<sys::ggml_backend_buffer_type_t, ModelError> {
    let all = buffer_types();
    all.iter().find(|(n, _)| n == name).map(|&(_, b)| b).ok_or_else(|| ModelError::NoSuchBufferType {
        name: name.to_string(),
        available: all.iter().map(|(n, _)| n.clone()).collect(),
    })
}

/// Patterns of the expert (MoE) feed-forward tensors of layers `0..n`: what llama-bench's
/// `-ncmoe n` keeps on the CPU, after any `-ot` overrides.
pub fn n_cpu_moe_patterns(n: u32) -> Vec<String> {
    (0..n).map(|i| format!(r"blk\.{i}\.ffn_(up|down|gate|gate_up)_(ch|)exps")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_as_llama_bench_spells_them() {
        for m in LoadMode::ALL {
            assert_eq!(LoadMode::from_name(m.name()), Some(m));
            assert_eq!(serde_json::to_value(m).unwrap(), m.name());
        }
        for m in LazyMode::ALL {
            assert_eq!(LazyMode::from_name(m.name()), Some(m));
        }
        assert_eq!(LoadMode::from_name("mmap+mlock"), Some(LoadMode::MmapMlock));
        assert_eq!(LoadMode::from_name("dio"), Some(LoadMode::DirectIo));
        assert_eq!(LoadMode::from_name("MMAP"), None);
        assert_eq!(LazyMode::default().name(), "auto");
        assert_eq!(DeviceSelection::Auto.to_string(), "auto");
        assert_eq!(DeviceSelection::None.to_string(), "none");
        assert_eq!(DeviceSelection::Only(vec!["CUDA0".into(), "CUDA1".into()]).to_string(), "CUDA0/CUDA1");
        let json = serde_json::to_string(&DeviceSelection::Only(vec!["A".into()])).unwrap();
        assert_eq!(serde_json::from_str::<DeviceSelection>(&json).unwrap(), DeviceSelection::Only(vec!["A".into()]));
    }

    #[test]
    fn override_lists_print_like_llama_bench() {
        assert_eq!(TensorBuftOverride::list_name(&[]), "none");
        let l = [TensorBuftOverride::new(r"blk\.0\.", "CPU"), TensorBuftOverride::new("ffn", "CPU")];
        assert_eq!(TensorBuftOverride::list_name(&l), r"blk\.0\.=CPU;ffn=CPU");
        assert_eq!(
            n_cpu_moe_patterns(2),
            [r"blk\.0\.ffn_(up|down|gate|gate_up)_(ch|)exps", r"blk\.1\.ffn_(up|down|gate|gate_up)_(ch|)exps"]
        );
        assert!(n_cpu_moe_patterns(0).is_empty());
    }

    #[test]
    fn unknown_names_are_typed_errors() {
        let backend = Backend::init().unwrap();
        assert!(buffer_type_names().iter().any(|n| n == "CPU"), "{:?}", buffer_type_names());
        TensorBuftOverride::new("x", "CPU").validate(&backend).unwrap();
        let err = TensorBuftOverride::new("x", "NoSuchBuft").validate(&backend).unwrap_err();
        assert!(
            matches!(&err, ModelError::NoSuchBufferType { name, available } if name == "NoSuchBuft" && available.contains(&"CPU".to_string())),
            "{err}"
        );
        // exact match, as llama-bench's lookup
        assert!(TensorBuftOverride::new("x", "cpu").validate(&backend).is_err());
        let err = DeviceSelection::Only(vec!["NoSuchGPU9".into()]).canonical(&backend).unwrap_err();
        assert!(matches!(err, ModelError::NoSuchDevice { .. }), "{err}");
        let err = DeviceSelection::Only(vec!["cpu".into()]).canonical(&backend).unwrap_err();
        assert!(matches!(err, ModelError::InvalidParam { name: "devices", .. }), "{err}");
        assert!(DeviceSelection::Only(vec![]).canonical(&backend).is_err());
        assert_eq!(DeviceSelection::None.canonical(&backend).unwrap(), DeviceSelection::None);
    }
}
