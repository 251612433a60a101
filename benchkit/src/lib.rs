//! benchkit: measure LLM inference with llama.cpp the way performance engineers do.
//!
//! The safe core wraps llama.cpp (through [`llama_sys`]): a [`Backend`] token, [`Model`]s,
//! [`Context`]s tied to their model by lifetime, [`Batch`]es, CPU [`ThreadPool`]s, device
//! enumeration, model metadata and system/build information. [`gguf`] validates model files
//! before llama.cpp sees them (llama.cpp can abort on malformed files), and [`synth`] writes
//! synthetic models of well-known shapes so a benchmark needs no download.
//!
//! ```no_run
//! use benchkit::{Backend, ContextParams, Model, ModelParams};
//! let backend = Backend::init()?;
//! let model = Model::load(&backend, "model.gguf", &ModelParams::default())?;
//! let ctx = model.new_context(&ContextParams::default().n_ctx(512))?;
//! println!("{} ({} params)", model.info().description, model.info().n_params);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod backend;
pub mod batch;
#[cfg(feature = "bench")]
pub mod bench;
pub mod build_info;
#[cfg(feature = "cli")]
pub mod cli;
pub mod context;
pub mod devices;
pub mod gguf;
mod log;
pub mod model;
pub mod names;
#[cfg(feature = "perplexity")]
pub mod perplexity;
pub mod provenance;
pub mod quantize;
#[cfg(feature = "replay")]
pub mod replay;
pub mod stats;
pub mod supervise;
pub mod synth;
pub mod system;
pub mod threadpool;
mod util;

pub use backend::{Backend, BackendError, Numa};
pub use batch::{Batch, BatchError};
pub use build_info::BuildInfo;
pub use context::{Context, ContextError, ContextParams, DecodeError, FlashAttn, PerfCounters, SeqError};
pub use devices::{Device, DeviceType};
pub use model::{
    DeviceSelection, LazyMode, LoadMode, Model, ModelError, ModelInfo, ModelParams, SplitMode, TensorBuftOverride,
    TokenizeError,
};
pub use names::ParseValueError;
pub use provenance::Provenance;
pub use system::SystemInfo;
pub use threadpool::{CpuMask, Priority, ThreadPool, ThreadPoolError, ThreadPoolParams};

/// Raw bindings, for what the safe layer does not cover yet.
pub use llama_sys as sys;

/// A llama.cpp token id.
pub type Token = i32;
