//! `benchkit compare`, `benchkit import` and `benchkit export`: flags and what they mean.
//!
//! ```text
//! benchkit compare --store results.db -b a1b2c3d -c e4f5a6b            # two commits
//! benchkit compare --store results.db -b n_threads=1 -c n_threads=2 -o json
//! benchkit compare --store results.db --by source -b llama-bench -c benchkit --fail-on regression
//! benchkit import --store results.db llama-bench.json vllm-result.json
//! benchkit export --store results.db --filter model=... -o records.csv
//! ```

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use super::results::{filter, StoreArg};
use super::CliError;
use crate::store::compare::CompareConfig;
use crate::store::import::{ExportFormat, ImportFormat};
use crate::store::Filter;

/// `--store` and `--label` on the subcommands that produce results.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StoreOut {
    /// Also store every result as it is produced: a SQLite file or a `postgres://` URL
    /// (default: $BENCHKIT_STORE).
    #[arg(long = "store", value_name = "PATH|URL")]
    pub store: Option<String>,
    /// The stored run's label.
    #[arg(long = "label", value_name = "TEXT")]
    pub label: Option<String>,
}

impl StoreOut {
    /// The store a run writes to: `--store`, else `BENCHKIT_STORE`; `None` for neither.
    pub fn spec(&self) -> Option<String> {
        self.store.clone().or_else(|| std::env::var(super::results::STORE_ENV).ok()).filter(|s| !s.trim().is_empty())
    }

    /// Opens the store for a run, when one is named.
    ///
    /// # Errors
    /// As [`crate::store::Store::open`]: a store that cannot be opened stops the run before it
    /// measures anything.
    pub fn writer(&self) -> Result<Option<crate::store::RunWriter>, crate::store::StoreError> {
        self.spec().map(|s| crate::store::RunWriter::open(&s, self.label.clone())).transpose()
    }
}

/// How `compare` prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
#[non_exhaustive]
pub enum CompareFormat {
    /// A markdown table, as compare-llama-bench.py prints.
    #[default]
    Md,
    /// The comparison as JSON.
    Json,
    /// One CSV row per test and metric.
    Csv,
}

/// When `compare` exits with code 2: the gate a CI job sets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
#[non_exhaustive]
pub enum Gate {
    /// Never.
    #[default]
    Never,
    /// When any row regressed beyond the noise.
    Regression,
    /// When any row changed beyond the noise, either way.
    Change,
}

/// The statistics of a comparison: `benchkit compare`'s and `benchkit experiment report`'s.
#[derive(clap::Args, Debug, Clone)]
pub struct StatsArgs {
    /// The noise threshold: a change smaller than this fraction is no change.
    #[arg(long = "threshold", value_name = "FRACTION", default_value_t = 0.02)]
    pub threshold: f64,
    /// The largest Mann-Whitney p that counts as a change.
    #[arg(long = "alpha", value_name = "P", default_value_t = 0.05)]
    pub alpha: f64,
    /// The bootstrap's seed.
    #[arg(long = "seed", default_value_t = 0x5eed)]
    pub seed: u64,
}

impl StatsArgs {
    /// # Errors
    /// [`CliError::Invalid`] for a threshold outside [0, 1) or an alpha outside (0, 1].
    pub fn validate(&self) -> Result<(), CliError> {
        if !(0.0..1.0).contains(&self.threshold) {
            return Err(CliError::invalid(
                "--threshold",
                format!("{}: a fraction in [0, 1), e.g. 0.02 for 2%", self.threshold),
            ));
        }
        if !(self.alpha > 0.0 && self.alpha <= 1.0) {
            return Err(CliError::invalid("--alpha", format!("{}: a probability in (0, 1]", self.alpha)));
        }
        Ok(())
    }
}

/// `benchkit compare`'s flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "benchkit compare",
    about = "Compare a baseline and a candidate from the store: ratio with a bootstrap 95% CI, Mann-Whitney p, verdict",
    after_help = "A selection (-b, -c) is a filter (`commit=a1b2c3,machine=...`, `n_threads=1`, `source=llama-bench`) \
                  or a bare value of the --by key (a commit by default, matched by prefix). Records are joined on \
                  every other key (test, model, machine, each parameter both record); repeated runs pool their \
                  samples. A row changed when the ratio's 95% CI excludes 1, p <= --alpha and the change is at \
                  least --threshold. Exit code 2 when --fail-on's condition holds."
)]
pub struct CompareArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArg,
    /// The baseline: a filter, or a value of --by's key.
    #[arg(short = 'b', long = "baseline", value_name = "SEL")]
    pub baseline: String,
    /// The candidate: a filter, or a value of --by's key.
    #[arg(short = 'c', long = "candidate", value_name = "SEL")]
    pub candidate: String,
    /// The key a bare selection names: commit, build, model, machine, source, label, run or any
    /// parameter.
    #[arg(long = "by", value_name = "KEY", default_value = "commit")]
    pub by: String,
    /// Only records where every `key=value` holds, on both sides; repeatable.
    #[arg(long = "filter", value_name = "K=V[,K=V...]")]
    pub filter: Vec<String>,
    /// Compare only this metric (`ts`, `ttft`, `tpot`, `itl`, `e2el`, `rps`, `ppl`, ...);
    /// repeatable. Default: every metric both sides have.
    #[arg(long = "metric", value_name = "NAME")]
    pub metrics: Vec<String>,
    /// Threshold, alpha and seed.
    #[command(flatten)]
    pub stats: StatsArgs,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = CompareFormat::Md)]
    pub output: CompareFormat,
    /// Exit with code 2 when a row regressed (`regression`) or changed either way (`change`).
    #[arg(long = "fail-on", value_enum, default_value_t = Gate::Never)]
    pub fail_on: Gate,
}

impl CompareArgs {
    /// Parses `argv` (program name first).
    ///
    /// # Errors
    /// clap's error for unknown or malformed flags.
    pub fn try_parse_argv(argv: impl IntoIterator<Item = String>) -> Result<Self, clap::Error> {
        Self::try_parse_from(argv)
    }

    fn selection(&self, flag: &'static str, sel: &str) -> Result<Filter, CliError> {
        let text = if sel.contains('=') { sel.to_string() } else { format!("{}={sel}", self.by) };
        Filter::parse(&text).map_err(|e| CliError::invalid(flag, e))
    }

    /// The records both sides are taken from.
    ///
    /// # Errors
    /// [`CliError::Invalid`] for a malformed `--filter`.
    pub fn filter(&self) -> Result<Filter, CliError> {
        filter(&self.filter)
    }

    /// The comparison asked for.
    ///
    /// # Errors
    /// [`CliError::Invalid`] for a malformed selection, a threshold outside [0, 1) or an alpha
    /// outside (0, 1].
    pub fn config(&self) -> Result<CompareConfig, CliError> {
        self.stats.validate()?;
        let mut c = CompareConfig::new(
            self.selection("--baseline", &self.baseline)?,
            self.selection("--candidate", &self.candidate)?,
        );
        c.metrics.clone_from(&self.metrics);
        (c.threshold, c.alpha, c.seed) = (self.stats.threshold, self.stats.alpha, self.stats.seed);
        Ok(c)
    }

    /// Whether the comparison fails the gate.
    pub fn fails(&self, c: &crate::store::compare::Comparison) -> bool {
        match self.fail_on {
            Gate::Never => false,
            Gate::Regression => c.has_regression(),
            Gate::Change => c.has_change(),
        }
    }
}

fn parse_import_format(s: &str) -> Result<ImportFormat, String> {
    s.parse()
}

/// `benchkit import`'s flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "benchkit import",
    about = "Bring llama-bench (json, jsonl, csv, sql) and vLLM benchmark results into the store",
    after_help = "Each file becomes one run per build and machine it holds, labelled with the file's name \
                  (or --label). A file that does not parse stores nothing."
)]
pub struct ImportArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArg,
    /// The files.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// auto (from the extension and contents), llama-bench-json, llama-bench-jsonl,
    /// llama-bench-csv, llama-bench-sql, vllm.
    #[arg(long = "format", value_name = "FORMAT", default_value = "auto", value_parser = parse_import_format)]
    pub format: ImportFormat,
    /// The runs' label (default: the file's name).
    #[arg(long = "label")]
    pub label: Option<String>,
}

impl ImportArgs {
    /// Parses `argv` (program name first).
    ///
    /// # Errors
    /// clap's error for unknown or malformed flags.
    pub fn try_parse_argv(argv: impl IntoIterator<Item = String>) -> Result<Self, clap::Error> {
        Self::try_parse_from(argv)
    }
}

fn parse_export_format(s: &str) -> Result<ExportFormat, String> {
    s.parse()
}

/// `benchkit export`'s flags.
#[derive(Debug, Clone, Parser)]
#[command(name = "benchkit export", about = "Write the store's records as jsonl or csv")]
pub struct ExportArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArg,
    /// Only records where every `key=value` holds; repeatable.
    #[arg(long = "filter", value_name = "K=V[,K=V...]")]
    pub filter: Vec<String>,
    /// jsonl or csv (default: from -o's extension, else jsonl).
    #[arg(long = "format", value_name = "FORMAT", value_parser = parse_export_format)]
    pub format: Option<ExportFormat>,
    /// The file (default: stdout).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

impl ExportArgs {
    /// Parses `argv` (program name first).
    ///
    /// # Errors
    /// clap's error for unknown or malformed flags.
    pub fn try_parse_argv(argv: impl IntoIterator<Item = String>) -> Result<Self, clap::Error> {
        Self::try_parse_from(argv)
    }

    /// The records to export.
    ///
    /// # Errors
    /// [`CliError::Invalid`] for a malformed `--filter`.
    pub fn filter(&self) -> Result<Filter, CliError> {
        filter(&self.filter)
    }

    /// `--format`, else `-o`'s extension (`.csv`), else jsonl.
    pub fn format(&self) -> ExportFormat {
        self.format.unwrap_or_else(|| {
            let csv = self.output.as_ref().and_then(|p| p.extension()).is_some_and(|e| e.eq_ignore_ascii_case("csv"));
            if csv {
                ExportFormat::Csv
            } else {
                ExportFormat::Jsonl
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compare(args: &[&str]) -> CompareArgs {
        CompareArgs::try_parse_argv(std::iter::once("benchkit compare").chain(args.iter().copied()).map(String::from))
            .unwrap()
    }

    #[test]
    fn bare_selections_name_the_by_key() {
        let c = compare(&["-b", "a1b2c3d", "-c", "e4f5a6b"]).config().unwrap();
        assert_eq!(
            (c.baseline.to_string(), c.candidate.to_string()),
            ("commit=a1b2c3d".into(), "commit=e4f5a6b".into())
        );
        let c =
            compare(&["--by", "source", "-b", "llama-bench", "-c", "n_threads=2,source=benchkit"]).config().unwrap();
        assert_eq!(
            (c.baseline.to_string(), c.candidate.to_string()),
            ("source=llama-bench".into(), "n_threads=2,source=benchkit".into())
        );
        assert_eq!((c.threshold, c.alpha, c.seed), (0.02, 0.05, 0x5eed));
    }

    #[test]
    fn bad_thresholds_alphas_and_filters_are_refused() {
        for arg in ["--threshold=1.5", "--threshold=-0.1", "--alpha=0", "--alpha=2"] {
            let a = compare(&["-b", "x1", "-c", "y2", arg]);
            assert!(a.config().is_err(), "{arg}");
        }
        assert!(compare(&["-b", "x1", "-c", "y2", "--filter", "novalue"]).filter().is_err());
        assert!(compare(&["-b", "=v", "-c", "y2"]).config().is_err());
    }

    #[test]
    fn export_format_follows_the_extension() {
        let e = |a: &[&str]| {
            ExportArgs::try_parse_argv(std::iter::once("x").chain(a.iter().copied()).map(String::from)).unwrap()
        };
        assert_eq!(e(&["-o", "r.CSV"]).format(), ExportFormat::Csv);
        assert_eq!(e(&["-o", "r.jsonl"]).format(), ExportFormat::Jsonl);
        assert_eq!(e(&["-o", "r.csv", "--format", "jsonl"]).format(), ExportFormat::Jsonl);
        assert_eq!(e(&[]).format(), ExportFormat::Jsonl);
        let i = ImportArgs::try_parse_argv(["x", "--format", "vllm", "a.json"].map(String::from)).unwrap();
        assert_eq!(i.format, ImportFormat::Vllm);
        assert!(ImportArgs::try_parse_argv(["x"].map(String::from)).is_err(), "a file is required");
    }
}
