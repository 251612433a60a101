//! Supervised trials: a measurement never kills the run.
//!
//! llama.cpp aborts (`GGML_ASSERT`) or faults on some configurations, and a process that
//! measures in-process dies with it and loses the sweep. Here each unit of work (a group of
//! bench grid points sharing a model, a perplexity run) runs in a worker process:
//!
//! - the supervisor writes a [`Job`] as JSON to the worker's stdin and reads [`WorkerMsg`]s, one
//!   JSON object a line, from a pipe; phases (start, load, warmup, each repetition) arrive with
//!   timestamps, and outputs reach the caller as they are produced;
//! - a worker that dies (signal, abort, OOM kill) or runs past the per-trial timeout becomes a
//!   [`CrashReport`]: signal name, exit status, the phase it was in, the last lines of llama.cpp's
//!   log (its stderr). The caller records it and starts a fresh worker for what is left;
//! - the worker's PID is known before any work starts ([`Trial::pid`]), so that placement can be
//!   applied to it and telemetry sampled from outside.
//!
//! # Which program is the worker
//! [`WorkerCommand::default`] re-executes the current executable with `BENCHKIT_WORKER=1` set.
//! Such a program calls [`worker_entry`] first thing in `main`: in a worker it runs the job and
//! exits, otherwise it returns at once. A program that cannot do that (a test harness, Python)
//! names another executable that calls it: the `benchkit-worker` binary of this workspace, or
//! any program, through [`WorkerCommand::program`] or `BENCHKIT_WORKER_EXE`.
//!
//! ```no_run
//! fn main() {
//!     benchkit::supervise::worker_entry();
//!     // ... the program's own work; supervised sweeps re-run this executable as workers.
//! }
//! ```

// The module example is about `main` itself: where worker_entry() goes.
#![allow(clippy::needless_doctest_main)]
// A build without any capability feature has supervision but no job to give it.
#![cfg_attr(
    not(any(feature = "bench", feature = "perplexity", feature = "replay")),
    allow(dead_code, unused_imports, unreachable_code)
)]

mod cancel;
mod protocol;
mod single;
mod trial;
mod worker;

pub use cancel::Cancel;
pub(crate) use protocol::unix_ns_now;
pub use protocol::{Job, Phase, WorkerMsg, PROTOCOL_VERSION};
pub use single::{run_single, run_single_measured, TrialError};
#[cfg(feature = "placement")]
pub(crate) use trial::signal_name;
pub use trial::{CrashReport, Ending, Event, Isolation, Trial, TrialConfig, WorkerCommand};
pub use worker::worker_entry;
pub(crate) use worker::Emitter;

/// Set in the environment of every worker process.
pub const WORKER_ENV: &str = "BENCHKIT_WORKER";
/// Names the worker executable instead of the current one (see [`WorkerCommand::default`]).
pub const WORKER_EXE_ENV: &str = "BENCHKIT_WORKER_EXE";

/// Errors of the supervision machinery itself (a crash of the work is not one: it is a record).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SuperviseError {
    /// The worker process could not be started.
    #[error("cannot start worker {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The program started but never answered as a worker.
    #[error(
        "{program} did not answer as a benchkit worker within {secs} s: a program that re-executes \
         itself must call benchkit::supervise::worker_entry() first in main, or set {WORKER_EXE_ENV} \
         to a worker executable (benchkit-worker)"
    )]
    NoHandshake {
        /// The program.
        program: String,
        /// How long the supervisor waited.
        secs: u64,
    },
    /// Spawning from inside a worker (a program that runs its supervisor again in the worker).
    #[error("refusing to start a worker from inside a worker ({WORKER_ENV} is set): call worker_entry() before anything else in main")]
    Recursive,
    /// The worker spoke a different protocol version (another benchkit build).
    #[error(
        "worker protocol version {got}, expected {PROTOCOL_VERSION}: the worker executable is another benchkit build"
    )]
    Protocol {
        /// What the worker said.
        got: u32,
    },
    /// The job could not be serialised or a worker line could not be parsed.
    #[error("worker protocol: {0}")]
    Json(#[from] serde_json::Error),
    /// Pipe I/O with the worker failed.
    #[error("worker pipe: {0}")]
    Io(#[from] std::io::Error),
}
