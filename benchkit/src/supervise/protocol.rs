//! What supervisor and worker say to each other: a job in, JSON lines out.

use serde::{Deserialize, Serialize};

/// Bumped when [`Job`] or [`WorkerMsg`] change incompatibly.
pub const PROTOCOL_VERSION: u32 = 1;

/// A unit of work for a worker process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Job {
    #[cfg(feature = "replay")]
    /// An in-process replay: the engine, the requests (already scheduled) and the driver's
    /// options.
    Replay {
        /// The in-process engine.
        config: crate::replay::inproc::InprocConfig,
        /// The requests, scheduled.
        requests: Vec<crate::replay::Request>,
        /// The driver's options.
        options: crate::replay::DriveConfig,
    },
    /// A perplexity, KL-base or KL-divergence run.
    #[cfg(feature = "perplexity")]
    Perplexity(crate::perplexity::PerplexityJob),
    /// Bench grid points, measured in order in one process (models reused as llama-bench does).
    #[cfg(feature = "bench")]
    Bench {
        /// `(index in the whole sweep, point)`: the index seeds the point's random tokens, so a
        /// point measures the same tokens whichever worker runs it.
        points: Vec<(usize, crate::bench::Point)>,
        /// Points in the whole sweep.
        total: usize,
        /// Run settings.
        settings: crate::bench::RunConfig,
    },
}

/// Where a trial is. Phases arrive with the worker's wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Phase {
    /// The trial begins.
    Start,
    /// Loading the model.
    Load,
    /// Creating the context (KV cache, compute graph reservation) and its threadpool.
    Context,
    /// The warmup run.
    Warmup,
    /// Timed repetition `rep` (1-based) of `of` begins.
    Repetition {
        /// 1-based repetition.
        rep: u32,
        /// Repetitions in the trial.
        of: u32,
    },
    /// Chunk `chunk` (1-based) of a perplexity run was scored.
    Chunk {
        /// 1-based chunk.
        chunk: usize,
        /// Chunks in the run.
        of: usize,
    },
    /// The trial's output was produced.
    Finished,
}

/// One line from a worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
#[non_exhaustive]
pub enum WorkerMsg {
    /// First line: the worker is up.
    Hello {
        /// Its process id.
        pid: u32,
        /// [`PROTOCOL_VERSION`] of its build.
        protocol: u32,
    },
    /// Trial `index` entered `phase`.
    Phase {
        /// Trial index within the job's numbering (bench: the point's index in the sweep).
        index: usize,
        /// The phase.
        #[serde(flatten)]
        phase: Phase,
        /// Wall-clock time, nanoseconds since the Unix epoch.
        unix_ns: u64,
    },
    /// Trial `index` made progress that the caller shows (a perplexity chunk's running value).
    Progress {
        /// Trial index.
        index: usize,
        /// The typed progress value, as JSON.
        value: serde_json::Value,
    },
    /// Trial `index` produced its output (a bench record, a perplexity result).
    Output {
        /// Trial index.
        index: usize,
        /// The typed output, as JSON.
        value: serde_json::Value,
    },
    /// llama.cpp is aborting (`GGML_ASSERT`, `GGML_ABORT`): its message, sent from ggml's abort
    /// callback just before the process dies with SIGABRT.
    Abort {
        /// `file:line: message`, as ggml prints it.
        message: String,
    },
    /// The job could not run at all (its spec was unreadable).
    Error {
        /// The worker's reason, e.g. the JSON error of an unreadable job.
        message: String,
    },
    /// Every trial of the job is done; the worker exits 0.
    Done,
}

pub(crate) fn unix_ns_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}
