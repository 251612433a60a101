//! `benchkit experiment run` and `benchkit experiment report`: flags and what they mean.
//!
//! ```text
//! benchkit experiment run docs/examples/parallel-x-rate.toml --store results.db
//! benchkit experiment run exp.toml --store results.db --dry-run     # the commands, nothing run
//! benchkit experiment report --store results.db parallel-x-rate -o json
//! ```

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use super::results::StoreArg;
use super::CliError;
use crate::experiment::{ReportConfig, RunOptions};

/// `benchkit experiment`'s flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "benchkit experiment",
    about = "Run an experiment file (factors x levels -> treatments, each set up, measured, torn down) and compare its treatments"
)]
pub struct ExperimentArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ExperimentCommand,
}

/// `run` or `report`.
#[derive(Debug, Clone, Subcommand)]
#[non_exhaustive]
pub enum ExperimentCommand {
    /// Run each treatment not yet completed in the store (an interrupted experiment resumes).
    Run(RunArgs),
    /// Each treatment's outcome and metrics, and each compared with the baseline treatment.
    Report(ReportArgs),
}

/// `benchkit experiment run`'s flags.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "The file's format: docs/experiments.md. Exit code 1 when a treatment failed, \
                        130 when interrupted (the treatment in progress is torn down first).")]
pub struct RunArgs {
    /// The experiment file (TOML).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The store.
    #[command(flatten)]
    pub store: StoreArg,
    /// Each treatment's logs go to DIR/<treatment>/ (default: a directory named after the
    /// experiment in the system's temporary directory).
    #[arg(long = "log-dir", value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Print each treatment's commands as JSON and run nothing.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
}

impl RunArgs {
    /// The options for `exe`, the benchkit executable each treatment runs.
    ///
    /// # Errors
    /// [`CliError::Missing`] without a store.
    pub fn options(&self, exe: PathBuf, name: &str) -> Result<RunOptions, CliError> {
        Ok(RunOptions {
            exe,
            store: self.store.spec()?,
            log_dir: self
                .log_dir
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join(format!("benchkit-experiment-{name}"))),
            cancel: crate::supervise::Cancel::new(),
        })
    }
}

/// How `experiment report` prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
#[non_exhaustive]
pub enum ReportFormat {
    /// Markdown: the treatments' table, then each comparison.
    #[default]
    Md,
    /// The whole report as JSON.
    Json,
    /// One row per treatment, test and metric compared with the baseline.
    Csv,
}

/// `benchkit experiment report`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArg,
    /// The experiment's name (its file's `name`).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The baseline treatment's id (`parallel=1+rate=1`); default: the first completed one.
    #[arg(short = 'b', long = "baseline", value_name = "TREATMENT")]
    pub baseline: Option<String>,
    /// Compare only this metric; repeatable. Default: every metric.
    #[arg(long = "metric", value_name = "NAME")]
    pub metrics: Vec<String>,
    /// Threshold, alpha and seed, as `benchkit compare`'s.
    #[command(flatten)]
    pub stats: super::store::StatsArgs,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ReportFormat::Md)]
    pub output: ReportFormat,
}

impl ReportArgs {
    /// The report asked for.
    ///
    /// # Errors
    /// [`CliError::Invalid`] for a threshold outside [0, 1) or an alpha outside (0, 1].
    pub fn config(&self) -> Result<ReportConfig, CliError> {
        self.stats.validate()?;
        Ok(ReportConfig {
            baseline: self.baseline.clone(),
            metrics: self.metrics.clone(),
            threshold: self.stats.threshold,
            alpha: self.stats.alpha,
            seed: self.stats.seed,
            ..ReportConfig::new(self.name.clone())
        })
    }
}

impl ExperimentArgs {
    /// Parses `argv` (program name first).
    ///
    /// # Errors
    /// clap's error for unknown or malformed flags.
    pub fn try_parse_argv(argv: impl IntoIterator<Item = String>) -> Result<Self, clap::Error> {
        Self::try_parse_from(argv)
    }
}

#[cfg(test)]
mod tests {
    use super::{ExperimentArgs, ExperimentCommand};

    fn parse(args: &[&str]) -> ExperimentArgs {
        ExperimentArgs::try_parse_argv(
            std::iter::once("benchkit experiment").chain(args.iter().copied()).map(String::from),
        )
        .unwrap()
    }

    #[test]
    fn run_and_report_flags() {
        let ExperimentCommand::Run(r) = parse(&["run", "x.toml", "--store", "s.db", "--dry-run"]).command else {
            panic!("not run")
        };
        assert!(r.dry_run);
        assert_eq!(
            r.options("/bin/benchkit".into(), "px").unwrap().log_dir.file_name().unwrap(),
            "benchkit-experiment-px"
        );
        let ExperimentCommand::Report(r) =
            parse(&["report", "--store", "s.db", "px", "-o", "csv", "-b", "a=1"]).command
        else {
            panic!("not report")
        };
        let c = r.config().unwrap();
        assert_eq!((c.name.as_str(), c.baseline.as_deref()), ("px", Some("a=1")));
        let ExperimentCommand::Report(bad) = parse(&["report", "--store", "s", "px", "--alpha", "0"]).command else {
            panic!("not report")
        };
        assert!(bad.config().is_err());
    }
}
