//! benchkit: measure LLM inference with llama.cpp the way performance engineers do.
//!
//! The safe core wraps llama.cpp (through [`llama_sys`]): a [`Backend`] token, [`Model`]s,
//! [`Context`]s tied to their model by lifetime, [`Batch`]es, CPU [`ThreadPool`]s, device
//! enumeration, model metadata and system/build information. [`gguf`] validates model files
//! before llama.cpp sees them (llama.cpp can abort on malformed files), and [`synth`] writes
//! synthetic models of well-known shapes so a benchmark needs no download.
//!
//! On top, the capabilities share one call shape: build a configuration, run it with a
//! progress callback, get typed results carrying one [`Provenance`]:
//! - [`bench::BenchConfig::run`] yields [`bench::BenchRecord`]s, one per grid point, as
//!   they are measured;
//! - [`perplexity::PerplexityJob::execute`] reports each chunk and returns the result;
//! - [`replay::ReplayConfig::run`] reports each request and returns the [`replay::ReplayResult`];
//! - [`placement::PlacementConfig::run`] compares schedulers, pinnings and memory policies on a
//!   workload and returns a [`placement::PlacementReport`].
//!
//! Each runs in a supervised worker process by default ([`supervise::Isolation`]), so a
//! llama.cpp abort becomes a record or an error, never the end of the caller.
//!
//! ```no_run
//! use benchkit::{Backend, ContextParams, Model, ModelParams};
//! let backend = Backend::init()?;
//! let model = Model::load(&backend, "model.gguf", &ModelParams::default())?;
//! let ctx = model.new_context(&ContextParams::default().n_ctx(512))?;
//! println!("{} ({} params)", model.info().description, model.info().n_params);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// Core: safe wrappers over llama.cpp's C API.
pub mod backend;
pub mod batch;
pub mod context;
pub mod devices;
mod log;
pub mod model;
mod serde_duration;
pub mod threadpool;
pub mod topology;
mod util;

// Model files: GGUF validation before llama.cpp sees a file, synthetic models, quantization.
pub mod gguf;
pub mod quantize;
pub mod synth;

// Capabilities, each behind its feature, and the supervision they run under.
#[cfg(feature = "bench")]
pub mod bench;
#[cfg(feature = "perplexity")]
pub mod perplexity;
#[cfg(feature = "replay")]
pub mod replay;
pub mod supervise;
// Where a workload's threads and memory run, applied by the supervisor and verified.
pub mod placement;
// What the machine did while a trial ran: CPU, memory, energy, GPUs, a server's metrics.
pub mod telemetry;

// Results: provenance (build, system, settings), statistics, parameter names.
pub mod build_info;
pub mod names;
pub mod provenance;
pub mod stats;
pub mod system;
// What happens to results after a run: the store, comparisons, rankings, commit sweeps.
#[cfg(feature = "store")]
pub mod commits;
// Experiment files: factors x levels -> treatments, each set up, measured and torn down.
#[cfg(feature = "experiment")]
pub mod experiment;
#[cfg(feature = "report")]
pub mod report;
#[cfg(feature = "serve")]
pub mod serve;
#[cfg(feature = "store")]
pub mod store;

// Front ends: the `benchkit` command's flags.
#[cfg(feature = "cli")]
pub mod cli;

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
