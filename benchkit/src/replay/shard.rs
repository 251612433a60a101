//! Load from many processes and machines: one seeded schedule split into `N` shards.
//!
//! Every shard prepares the same workload and computes the same full schedule (same dataset,
//! seed and rate), then keeps a deterministic slice of it: conversation `k` of the schedule
//! (warmup included, in schedule order) goes to shard `k % N`. A request keeps its scheduled
//! time, so the shards together offer exactly the load of one process.
//!
//! The shards measure from a shared start: with an agreed wall-clock time
//! ([`ShardConfig::start_at`]) each shard waits for it and then starts its schedule; a shard
//! that is ready only after that time fails ([`ShardError::StartPassed`]) rather than send its
//! part of the load late. Without one, each shard starts when it is ready and the merge aligns
//! them on the earliest shard's start (fine for processes on one machine started together).
//!
//! As it finishes, each shard writes `DIR/shard-I-of-N.json` ([`ShardFile`]): its aggregator
//! state (histograms in HdrHistogram's interchange encoding, counters, exact moments), the
//! schedule's identity, its wall-clock start and its own [`ReplayResult`] (provenance
//! included); its records go to `DIR/shard-I-of-N.requests.jsonl` unless `save_requests`
//! names another file. [`merge()`] combines every shard into one [`ReplayResult`].

mod merge;
mod run;

pub use merge::{merge, merge_files, merged_records, read_shard, shard_files, shared_origin};
pub(crate) use run::ShardRun;

use super::metrics::{AggregatorState, MetricsError};
use super::workload::ScheduleConfig;
use super::{ReplayResult, Request, WorkloadConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `format` of a [`ShardFile`].
pub const FORMAT: &str = "benchkit-replay-shard/1";

/// A start further ahead than this is refused: most likely milliseconds given for seconds.
pub const MAX_START_AHEAD: Duration = Duration::from_secs(24 * 3600);

/// Errors of sharded replays and of their merge.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShardError {
    /// Shards drive one shared server; N in-process engines would be N systems under test.
    #[error("--shard needs an http target: every shard must load the same server")]
    Target,
    /// The agreed start had passed when this shard was ready to send.
    #[error("the agreed start time passed {:.3} s before this shard was ready: pick a later --start-at (every shard must be up by then)", late.as_secs_f64())]
    StartPassed {
        /// How late the shard was.
        late: Duration,
    },
    /// The agreed start is more than [`MAX_START_AHEAD`] away.
    #[error("the agreed start time is {:.0} s ahead (more than a day): unix seconds, not milliseconds?", ahead.as_secs_f64())]
    StartTooFar {
        /// How far ahead it is.
        ahead: Duration,
    },
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A shard file that is not JSON of the expected shape.
    #[error("{}: not a benchkit shard file: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// A shard file of another format (version).
    #[error("{}: format {found:?}, expected {FORMAT:?}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// Its `format`.
        found: String,
    },
    /// A shard file whose aggregator state cannot be decoded or contradicts itself.
    #[error("{}: {source}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: MetricsError,
    },
    /// No shard file among the inputs.
    #[error("no shard files (shard-I-of-N.json) in {inputs}")]
    NoShards {
        /// The inputs, as given.
        inputs: String,
    },
    /// Shards of different shard counts.
    #[error("{}: shard {found}, but {} is shard {expected}: shards of runs split differently", path.display(), first.display())]
    CountMismatch {
        /// The odd file.
        path: PathBuf,
        /// Its shard.
        found: ShardSpec,
        /// The first file.
        first: PathBuf,
        /// The first file's shard.
        expected: ShardSpec,
    },
    /// Shards of different schedules (workload, seed, rate, arrivals or shard count).
    #[error("{}: schedule {found} differs from {}'s {expected}: shards of different runs", path.display(), first.display())]
    ScheduleMismatch {
        /// The odd file.
        path: PathBuf,
        /// Its schedule identity.
        found: String,
        /// The first file.
        first: PathBuf,
        /// The first file's identity.
        expected: String,
    },
    /// Shards that did not agree on a start time.
    #[error("{}: agreed start {found:?} (unix ns) differs from {}'s {expected:?}", path.display(), first.display())]
    StartMismatch {
        /// The odd file.
        path: PathBuf,
        /// Its agreed start.
        found: Option<u64>,
        /// The first file.
        first: PathBuf,
        /// The first file's.
        expected: Option<u64>,
    },
    /// The same shard twice.
    #[error("shard {index} twice: {} and {}", first.display(), second.display())]
    Duplicate {
        /// The shard index.
        index: u32,
        /// One file.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// Shards missing from the inputs.
    #[error("shards {missing:?} of {count} are missing")]
    Missing {
        /// The absent indices.
        missing: Vec<u32>,
        /// N.
        count: u32,
    },
    /// The shards' aggregators cannot be merged (different goodput objectives).
    #[error("{}: {source}", path.display())]
    Merge {
        /// The file that did not merge.
        path: PathBuf,
        /// Why.
        source: MetricsError,
    },
}

/// Shard `index` of `count`, written `I/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShardSpec {
    /// 0-based index, below `count`.
    pub index: u32,
    /// Number of shards, at least 1.
    pub count: u32,
}

impl std::str::FromStr for ShardSpec {
    type Err = crate::ParseValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || crate::ParseValueError::new("shard", s, &["I/N with 0 <= I < N, e.g. 0/4"]);
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if index >= count {
            return Err(bad());
        }
        Ok(ShardSpec { index, count })
    }
}

impl std::fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl ShardSpec {
    /// `shard-I-of-N`: the stem of the shard's files.
    pub fn stem(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

/// An agreed start: RFC 3339 (`2026-12-05T21:00:00Z`, offsets allowed) or unix seconds
/// (`1796504400.5`).
///
/// # Errors
/// [`crate::ParseValueError`] for anything else, or a time before 1970.
pub fn parse_start_at(s: &str) -> Result<SystemTime, crate::ParseValueError> {
    let bad = || crate::ParseValueError::new("start time", s, &["RFC 3339 (2026-12-05T21:00:00Z)", "unix seconds"]);
    let s = s.trim();
    // Unix seconds are read as decimal digits, not through a float: exact to the nanosecond.
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    let ns: i128 = if !whole.is_empty() && digits(whole) && digits(frac) {
        let secs: i128 = whole.parse().map_err(|_| bad())?;
        let frac: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        secs * 1_000_000_000 + frac.parse::<i128>().map_err(|_| bad())?
    } else {
        let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|_| bad())?;
        i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos())
    };
    let ns = u64::try_from(ns).map_err(|_| bad())?;
    Ok(UNIX_EPOCH + Duration::from_nanos(ns))
}

/// Nanoseconds since the unix epoch (0 before it).
pub fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// One shard of a replay.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardConfig {
    /// Which shard.
    pub spec: ShardSpec,
    /// Where the shard writes its files (created when missing).
    pub dir: PathBuf,
    /// The agreed start, if any (see the module docs).
    pub start_at: Option<SystemTime>,
}

impl ShardConfig {
    /// Shard `spec`, writing into `dir`, starting when ready.
    pub fn new(spec: ShardSpec, dir: impl Into<PathBuf>) -> Self {
        ShardConfig { spec, dir: dir.into(), start_at: None }
    }

    /// The same shard, starting at `start_at`.
    pub fn start_at(self, start_at: SystemTime) -> Self {
        ShardConfig { start_at: Some(start_at), ..self }
    }

    /// `DIR/shard-I-of-N.json`.
    pub fn result_path(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.spec.stem()))
    }

    /// `DIR/shard-I-of-N.requests.jsonl`.
    pub fn records_path(&self) -> PathBuf {
        self.dir.join(format!("{}.requests.jsonl", self.spec.stem()))
    }
}

/// What a shard writes as it finishes. Aggregator times are ns after this shard's own start,
/// `origin_unix_ns`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardFile {
    /// [`FORMAT`].
    pub format: String,
    /// Which shard.
    pub shard: ShardSpec,
    /// [`schedule_identity`] of the full schedule.
    pub schedule_id: String,
    /// The agreed start, unix ns (`None`: each shard started when ready).
    pub start_at_unix_ns: Option<u64>,
    /// When this shard's time 0 was, unix ns.
    pub origin_unix_ns: u64,
    /// From this shard's time 0 to its last completion, ns.
    pub duration_ns: u64,
    /// The per-request records (JSONL), relative to this file's directory when relative.
    pub records_file: Option<PathBuf>,
    /// Counters, moments and histograms.
    pub aggregator: AggregatorState,
    /// This shard's own result, provenance included.
    pub result: ReplayResult,
}

impl ShardFile {
    /// This shard's start after the shared `origin` (unix ns), ns.
    pub fn offset_ns(&self, origin: u64) -> u64 {
        self.origin_unix_ns.saturating_sub(origin)
    }
}

/// The identity of a schedule split `count` ways: sha256 over the shard count, the schedule
/// settings, the workload's size and seeds, and every scheduled request (its text or tokens,
/// lengths, conversation, turn, warmup flag and time). The dataset's path is left out, so
/// machines that keep the same file in different places agree.
pub fn schedule_identity(
    requests: &[Request],
    workload: &WorkloadConfig,
    schedule: &ScheduleConfig,
    count: u32,
) -> String {
    struct Hashing(Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut h = Hashing(Sha256::new());
    let head = serde_json::json!({
        "format": FORMAT,
        "shards": count,
        "schedule": schedule,
        "num_prompts": workload.num_prompts,
        "seed": workload.seed,
        "fixed_output_len": workload.fixed_output_len,
        "multi_turn": workload.multi_turn,
    });
    // Serializing into a hasher cannot fail: the writer never errs and every value is data.
    let _ = serde_json::to_writer(&mut h, &head);
    for r in requests {
        let _ = serde_json::to_writer(&mut h, r);
    }
    format!("{:x}", h.0.finalize())
}

/// The requests of shard `spec`: conversation `k` of the schedule order (the order of first
/// appearance) goes to shard `k % N`.
pub fn slice(requests: Vec<Request>, spec: ShardSpec) -> Vec<Request> {
    let mut conversations: HashMap<String, u32> = HashMap::new();
    requests
        .into_iter()
        .filter(|r| {
            let next = conversations.len() as u64 % u64::from(spec.count.max(1));
            let k = *conversations.entry(r.conversation_id.clone()).or_insert(next as u32);
            k == spec.index
        })
        .collect()
}

#[cfg(test)]
mod tests;
