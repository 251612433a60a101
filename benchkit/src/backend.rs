//! The backend token: proof that llama.cpp's global state is initialised.

use std::sync::OnceLock;

/// Errors initialising llama.cpp.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// No compute device was registered (a build without even the CPU backend).
    #[error("llama.cpp registered no compute device; the build is missing its CPU backend")]
    NoDevices,
}

/// Initialises llama.cpp once per process and routes its logging into `tracing`.
///
/// Every [`crate::Model`] is loaded through a `Backend`, so no llama.cpp call happens before
/// initialisation. Cheap to copy; llama.cpp's global state lives for the whole process.
#[derive(Debug, Clone, Copy)]
pub struct Backend {
    _private: (),
}

static INIT: OnceLock<Result<(), String>> = OnceLock::new();

/// How the CPU backend places threads and memory on NUMA systems (llama-bench `--numa`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Numa {
    /// No NUMA handling (llama-bench's default).
    #[default]
    Disabled,
    /// Spread threads evenly over the nodes.
    Distribute,
    /// Keep threads on the node the process started on.
    Isolate,
    /// Use the CPU map `numactl` gave the process.
    Numactl,
}

impl Numa {
    /// The name `--numa` takes: `distribute`, `isolate`, `numactl` (`disabled` for the default).
    pub fn name(self) -> &'static str {
        match self {
            Numa::Disabled => "disabled",
            Numa::Distribute => "distribute",
            Numa::Isolate => "isolate",
            Numa::Numactl => "numactl",
        }
    }

    /// Parses `--numa`'s value; an empty one means `distribute`, as llama-bench reads it.
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "distribute" | "" => Numa::Distribute,
            "isolate" => Numa::Isolate,
            "numactl" => Numa::Numactl,
            "disabled" => Numa::Disabled,
            _ => return None,
        })
    }

    fn raw(self) -> llama_sys::ggml_numa_strategy {
        match self {
            Numa::Disabled => llama_sys::GGML_NUMA_STRATEGY_DISABLED,
            Numa::Distribute => llama_sys::GGML_NUMA_STRATEGY_DISTRIBUTE,
            Numa::Isolate => llama_sys::GGML_NUMA_STRATEGY_ISOLATE,
            Numa::Numactl => llama_sys::GGML_NUMA_STRATEGY_NUMACTL,
        }
    }
}

impl Backend {
    /// Initialises llama.cpp (idempotent).
    ///
    /// # Errors
    /// [`BackendError::NoDevices`] if the build registered no compute device.
    pub fn init() -> Result<Self, BackendError> {
        let res = INIT.get_or_init(|| {
            crate::log::install();
            // SAFETY: llama_backend_init only initialises global tables; OnceLock runs it once.
            unsafe { llama_sys::llama_backend_init() };
            // SAFETY: plain query of the backend registry after initialisation.
            if unsafe { llama_sys::ggml_backend_dev_count() } == 0 {
                return Err("no devices".into());
            }
            Ok(())
        });
        match res {
            Ok(()) => Ok(Backend { _private: () }),
            Err(_) => Err(BackendError::NoDevices),
        }
    }

    /// Applies a NUMA strategy for the rest of the process (`llama_numa_init`). Call it before
    /// loading models, once: ggml keeps the first strategy and only logs later calls. Every
    /// process measuring (each supervised worker too) needs its own call.
    pub fn init_numa(&self, numa: Numa) {
        // SAFETY: the backend is initialised (this token exists), so the CPU backend
        // llama_numa_init asserts on is registered; the call only reads sysfs and sets globals.
        unsafe { llama_sys::llama_numa_init(numa.raw()) }
    }

    /// Compute devices llama.cpp can use (CPU, GPUs, ...).
    pub fn devices(&self) -> Vec<crate::Device> {
        crate::devices::list()
    }

    /// Whether this build can offload layers to a GPU.
    pub fn supports_gpu_offload(&self) -> bool {
        // SAFETY: pure query.
        unsafe { llama_sys::llama_supports_gpu_offload() }
    }

    /// Whether this build can memory-map model files.
    pub fn supports_mmap(&self) -> bool {
        // SAFETY: pure query.
        unsafe { llama_sys::llama_supports_mmap() }
    }

    /// Whether this build can lock model memory (mlock).
    pub fn supports_mlock(&self) -> bool {
        // SAFETY: pure query.
        unsafe { llama_sys::llama_supports_mlock() }
    }

    /// The most sequences one context can hold.
    pub fn max_parallel_sequences(&self) -> usize {
        // SAFETY: pure query.
        unsafe { llama_sys::llama_max_parallel_sequences() }
    }

    /// The most devices a tensor split can name.
    pub fn max_devices(&self) -> usize {
        // SAFETY: pure query.
        unsafe { llama_sys::llama_max_devices() }
    }
}
