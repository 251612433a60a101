//! ShareGPT replay: workloads, arrival schedules, targets (in-process llama.cpp with continuous
//! batching, OpenAI-compatible HTTP servers) and serving metrics (TTFT, TPOT, ITL, E2E, goodput).

mod driver;
pub mod http;
pub mod inproc;
pub mod metrics;
mod types;
pub mod workload;

pub use driver::{drive, drive_iter, DriveOptions, DriveStats};
pub use types::{ChatMessage, Failure, RecordFuture, Request, RequestRecord, Target, TokenCountSource};
