//! Experiment files, in llm-d-benchmark's "Design of Experiments" shape: factors with levels
//! make treatments (a full factorial or an explicit list); each treatment is set up (commands,
//! a long-lived server, a wait for its health URL), measured by one `benchkit` subcommand run
//! as a supervised child process that stores its result, and torn down, always.
//!
//! ```toml
//! name = "parallel-x-rate"
//! command = "replay"
//! args = ["--target", "http", "--base-url", "http://127.0.0.1:{port}", "-m", "{env:MODEL}"]
//!
//! [[factors]]
//! name = "parallel"            # a placeholder only: the server's flag
//! levels = [1, 2]
//!
//! [[factors]]
//! name = "rate"
//! levels = [1, 2]
//! flag = "--request-rate"      # appended to the command's args
//!
//! [setup]
//! spawn = ["{env:LLAMA_SERVER}", "-m", "{env:MODEL}", "--parallel", "{parallel}", "--port", "{port}"]
//! wait_http = "http://127.0.0.1:{port}/health"
//! ```
//!
//! Every treatment's outcome is a run in the store, labelled `exp:<name>/<treatment>@<hash>`
//! ([`label`]): the command's own run (its records tagged with `experiment`, `treatment` and
//! `exp.<factor>` parameters), or a run with status `setup_failed` or `failed` and the log's
//! tail. A treatment with an `ok` run under the same label is skipped when the experiment runs
//! again, so an interrupted experiment resumes; the hash covers what makes a result (the
//! command, its arguments, the factors' flags, the setup), so an edited file measures again.
//!
//! See docs/experiments.md for the file format.

mod file;
mod process;
mod report;
mod run;
mod template;
mod treatments;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use file::{Experiment, Factor, Setup, Teardown, COMMANDS};
pub use report::{
    report, to_csv, to_markdown, ExperimentReport, MetricSummary, RecordSummary, ReportConfig, TreatmentComparison,
    TreatmentRow,
};
pub use run::{cancel_on_signals, Progress, RunOptions, RunSummary, TreatmentOutcome, TreatmentPlan};
pub use treatments::Treatment;

/// What stops an experiment from being read, run or reported (a treatment that fails is not:
/// it is a [`TreatmentOutcome`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExperimentError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not TOML, or not of the experiment's shape.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Toml {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser says.
        message: String,
    },
    /// A value that is well-formed TOML but means nothing runnable.
    #[error("{}: {key}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key, as a path into the file (`setup.spawn[3]`, `factors[1].levels`).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The store refused something.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A file or process of the experiment itself could not be used.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `experiment report` for a name with no run in the store.
    #[error("no run of experiment {name:?} in {store}")]
    NoRuns {
        /// The experiment.
        name: String,
        /// The store.
        store: String,
    },
    /// `--baseline` names no treatment of the experiment.
    #[error("experiment {name:?} has no treatment {baseline:?} with a completed run (treatments: {known})")]
    NoBaseline {
        /// The experiment.
        name: String,
        /// The treatment asked for.
        baseline: String,
        /// The treatments with a completed run.
        known: String,
    },
}

/// The label of a treatment's runs: `exp:<name>/<treatment>@<hash>`.
pub fn label(name: &str, treatment: &str, hash: &str) -> String {
    format!("{}{treatment}@{hash}", label_prefix(name))
}

/// What every label of the experiment `name` starts with.
pub fn label_prefix(name: &str) -> String {
    format!("exp:{name}/")
}

/// `(treatment, hash)` of a label of the experiment `name`.
pub fn parse_label<'a>(name: &str, label: &'a str) -> Option<(&'a str, &'a str)> {
    label.strip_prefix(&label_prefix(name))?.rsplit_once('@')
}
