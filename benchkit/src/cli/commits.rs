//! `benchkit commits`: build and benchmark each llama.cpp commit of a repository, store and
//! compare them ([`crate::commits`]).
//!
//! ```sh
//! benchkit commits --repo ~/llama.cpp --commits b6000..b6010 --store results.db -- bench -p 512 -n 128
//! benchkit commits --repo ~/llama.cpp --commits abc123,def456 --cargo-arg=--features=cuda -- bench -ngl 99
//! ```

use std::path::{Path, PathBuf};

use super::CliError;
use crate::commits::{CommitSpec, CommitSweep};

/// When the command fails (exit code 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// When a comparison of consecutive commits flags a regression.
    Regression,
    /// Never (the summary still shows regressions).
    None,
}

/// `benchkit commits`'s flags.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "benchkit commits",
    about = "Build and benchmark each llama.cpp commit of a repository, store and compare them",
    after_help = "Each commit is checked out as a worktree in WORK/<sha>/src, benchkit is built against it \
                  (cargo build --release, LLAMA_CPP_DIR set, ccache for llama.cpp), the suite after `--` runs \
                  with the built binary, and its records are stored with the commit as build_commit. Exit \
                  code 2 when a regression is flagged (--fail-on regression)."
)]
pub struct CommitsArgs {
    /// The llama.cpp git repository.
    #[arg(long = "repo", value_name = "PATH")]
    pub repo: PathBuf,
    /// `A..B` (A through B inclusive, first-parent order) or a comma-separated list of revisions.
    #[arg(long = "commits", value_name = "A..B|LIST")]
    pub commits: String,
    /// The store (SQLite path or postgres:// URL); default $BENCHKIT_STORE.
    #[arg(long = "store", value_name = "S")]
    pub store: Option<String>,
    /// Where worktrees, target directories and logs go (default: target/benchkit-commits in the
    /// benchkit source).
    #[arg(long = "work-dir", value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// benchkit's workspace to build against each commit (default: the one this binary was
    /// built from).
    #[arg(long = "benchkit-src", value_name = "DIR")]
    pub benchkit_src: Option<PathBuf>,
    /// Extra argument to `cargo build` (repeatable), e.g. `--cargo-arg=--features=cuda`.
    #[arg(long = "cargo-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub cargo_args: Vec<String>,
    /// Leave each commit's worktree in place.
    #[arg(long = "keep-worktrees")]
    pub keep_worktrees: bool,
    /// Leave each commit's target directory in place (by default only the newest is kept).
    #[arg(long = "keep-targets")]
    pub keep_targets: bool,
    /// The stored runs' label.
    #[arg(long = "label")]
    pub label: Option<String>,
    /// Exit with code 2 on a flagged regression, or never.
    #[arg(long = "fail-on", value_enum, default_value = "regression")]
    pub fail_on: FailOn,
    /// A change smaller than this fraction is no change.
    #[arg(long = "threshold", default_value_t = 0.02)]
    pub threshold: f64,
    /// The largest Mann-Whitney p that counts as a change.
    #[arg(long = "alpha", default_value_t = 0.05)]
    pub alpha: f64,
    /// Print the report as JSON instead of a table.
    #[arg(long = "json")]
    pub json: bool,
    /// The suite: `bench` and its flags (e.g. `bench -p 512 -n 128 -r 5 -t 8`).
    #[arg(last = true, required = true, value_name = "SUITE")]
    pub suite: Vec<String>,
}

impl CommitsArgs {
    /// Parses `argv` (program name first).
    ///
    /// # Errors
    /// clap's error (for `--help` too: `e.exit()` prints it).
    pub fn try_parse_argv(argv: impl IntoIterator<Item = String>) -> Result<Self, clap::Error> {
        <Self as clap::Parser>::try_parse_from(argv)
    }

    /// The sweep. `default_src` is the benchkit workspace to build when `--benchkit-src` is not
    /// given; `env_store` is `$BENCHKIT_STORE`.
    ///
    /// # Errors
    /// [`CliError::Missing`] without a store; [`CliError::Invalid`] for a bad `--commits`,
    /// threshold or alpha, or a default source that does not exist.
    pub fn sweep(&self, default_src: &Path, env_store: Option<String>) -> Result<CommitSweep, CliError> {
        let commits: CommitSpec = self.commits.parse().map_err(|e| CliError::invalid("--commits", e))?;
        let store = self.store.clone().or(env_store).filter(|s| !s.is_empty()).ok_or(CliError::Missing {
            flag: "--store",
            why: "every commit's results are stored (or set BENCHKIT_STORE)",
        })?;
        let src = self.benchkit_src.clone().unwrap_or_else(|| default_src.to_path_buf());
        if !src.join("Cargo.toml").is_file() {
            return Err(CliError::invalid(
                "--benchkit-src",
                format!("{} holds no Cargo.toml: pass benchkit's source directory", src.display()),
            ));
        }
        if !(self.threshold.is_finite() && (0.0..1.0).contains(&self.threshold)) {
            return Err(CliError::invalid("--threshold", format!("{} is not a fraction in [0, 1)", self.threshold)));
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(CliError::invalid("--alpha", format!("{} is not a probability in (0, 1)", self.alpha)));
        }
        let work_dir = self.work_dir.clone().unwrap_or_else(|| src.join("target").join("benchkit-commits"));
        let mut sweep = CommitSweep::new(&self.repo, commits, self.suite.clone(), store, work_dir, src);
        sweep.keep_worktrees = self.keep_worktrees;
        sweep.keep_targets = self.keep_targets;
        sweep.cargo_args = self.cargo_args.clone();
        sweep.label = self.label.clone();
        sweep.threshold = self.threshold;
        sweep.alpha = self.alpha;
        Ok(sweep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<CommitsArgs, clap::Error> {
        CommitsArgs::try_parse_argv(std::iter::once("benchkit commits").chain(args.iter().copied()).map(String::from))
    }

    fn src() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[test]
    fn flags_become_a_sweep() {
        let a = parse(&[
            "--repo",
            "/r",
            "--commits",
            "a..b",
            "--store",
            "s.db",
            "--cargo-arg=--no-default-features",
            "--cargo-arg",
            "--features=native",
            "--fail-on",
            "none",
            "--",
            "bench",
            "-p",
            "16",
            "-t",
            "1,2",
        ])
        .unwrap();
        assert_eq!(a.fail_on, FailOn::None);
        let s = a.sweep(&src(), None).unwrap();
        assert_eq!(s.commits, CommitSpec::Range { from: "a".into(), to: "b".into() });
        assert_eq!(s.suite_args, ["bench", "-p", "16", "-t", "1,2"]);
        assert_eq!(s.cargo_args, ["--no-default-features", "--features=native"]);
        assert_eq!(s.store, "s.db");
        assert_eq!(s.work_dir, src().join("target/benchkit-commits"));
    }

    #[test]
    fn store_comes_from_the_environment_or_is_required() {
        let a = parse(&["--repo", "/r", "--commits", "a", "--", "bench"]).unwrap();
        assert_eq!(a.sweep(&src(), Some("e.db".into())).unwrap().store, "e.db");
        assert!(matches!(a.sweep(&src(), None), Err(CliError::Missing { flag: "--store", .. })));
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(parse(&["--repo", "/r", "--commits", "a"]).is_err(), "no suite");
        let a = parse(&["--repo", "/r", "--commits", "a...b", "--store", "s", "--", "bench"]).unwrap();
        assert!(matches!(a.sweep(&src(), None), Err(CliError::Invalid { flag: "--commits", .. })));
        let a =
            parse(&["--repo", "/r", "--commits", "a", "--store", "s", "--threshold", "NaN", "--", "bench"]).unwrap();
        assert!(matches!(a.sweep(&src(), None), Err(CliError::Invalid { flag: "--threshold", .. })));
        let a = parse(&["--repo", "/r", "--commits", "a", "--store", "s", "--", "bench"]).unwrap();
        assert!(matches!(
            a.sweep(Path::new("/nonexistent"), None),
            Err(CliError::Invalid { flag: "--benchkit-src", .. })
        ));
    }
}
