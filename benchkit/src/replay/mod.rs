//! ShareGPT replay: workloads, arrival schedules, targets (in-process llama.cpp with continuous
//! batching, OpenAI-compatible HTTP servers) and serving metrics (TTFT, TPOT, ITL, E2E, goodput).

mod driver;
#[cfg(feature = "replay-http")]
pub mod http;
pub mod inproc;
mod lag;
pub mod metrics;
mod result;
mod run;
mod selfcheck;
pub mod shard;
mod supervised;
pub mod sweep;
mod types;
pub mod workload;

pub use driver::{drive, drive_iter, DriveConfig, DriveStats};
pub use lag::{LagBreakdown, LagPart};
pub use result::{sharegpt_dataset, InfTag, ReplayResult, RequestRate};
pub use run::{DatasetSource, PreparedReplay, ReplayConfig, ReplayError, TargetConfig, WorkloadConfig};
pub use selfcheck::{
    runqueue_wait_s, ClientCheck, ClientCheckConfig, ClientCpu, CpuMeter, TokenCheck, TokenDisagreement,
};
pub(crate) use supervised::run_job;
pub use supervised::{replay_inproc_measured, replay_inproc_supervised};
pub use types::{ChatMessage, Failure, RecordFuture, Request, RequestRecord, Target, TokenCountSource};
