//! Commit sweeps: each commit of a llama.cpp repository built into its own benchkit, its suite
//! run under supervision, its results stored, and consecutive commits compared.
//!
//! For each commit, in `work_dir/<sha>/` ([`CommitLayout`]):
//! 1. `src/`: a detached worktree of the repository at the commit (removed afterwards, also when
//!    anything fails, unless `keep_worktrees`);
//! 2. `target/`: `cargo build --release --bin benchkit` of benchkit's own workspace with
//!    `LLAMA_CPP_DIR=src`, its log in `build.log`. llama-sys has CMake use ccache as the
//!    compiler launcher (`GGML_CCACHE=ON`); `CCACHE_BASEDIR=work_dir/<sha>` and
//!    `CCACHE_NOHASHDIR=1` make every path the compiler sees relative and identical across
//!    commits, so unchanged llama.cpp sources hit the cache. The Rust side is not ccached: a
//!    commit's target directory starts as a copy of the newest one in `work_dir` (its llama.cpp
//!    build tree and binary removed), so dependencies are compiled once per sweep, not once per
//!    commit. A failed build is stored as a `build_failed` run with the log's tail, and the
//!    sweep goes on;
//! 3. the freshly built binary runs the suite (`bench ...`, supervised trials as usual),
//!    appending every record to `records.jsonl` (`--save-jsonl`), its output in `suite.log`;
//! 4. the records are stored as one run per commit, `build_commit` the commit's.
//!
//! Then each successfully measured commit is compared with the previous one, test by test
//! ([`Comparison`]).
//!
//! Needs the `bench` feature as well as `store` (the suite's records are bench records).
#![cfg(feature = "bench")]

use std::fs::File;
use std::io::{BufRead, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::store::compare::{compare, CompareConfig};
use crate::store::{Filter, RunId, RunMeta, Store, StoreError, StoredRecord};

/// How many lines of a failed build's (or suite's) log are kept as the run's error.
pub const LOG_TAIL_LINES: usize = 40;

/// What stops a sweep (a commit that fails to build or measure does not: it is a
/// [`CommitOutcome`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitsError {
    /// A `--commits` value that is neither `A..B` nor a comma-separated list of revisions.
    #[error("commits {spec:?}: {reason}")]
    Spec {
        /// The value as given.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// A git command failed (a revision that does not exist, a path that is no repository).
    #[error("git {args}: {reason}")]
    Git {
        /// The arguments.
        args: String,
        /// git's message.
        reason: String,
    },
    /// `benchkit_src` is not benchkit's workspace.
    #[error("{} is not benchkit's source (no Cargo.toml with the benchkit binary); pass --benchkit-src", .0.display())]
    BenchkitSrc(PathBuf),
    /// A suite that is not `bench ...`.
    #[error("the suite must be `bench ARGS...` (got {0:?})")]
    Suite(String),
    /// A suite argument the sweep sets itself.
    #[error("the suite must not set {0}: the sweep writes each commit's records itself")]
    SuiteFlag(String),
    /// The store refused something.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file or process of the sweep could not be used.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CommitsError {
    let path = path.to_path_buf();
    move |source| CommitsError::Io { what, path, source }
}

/// Which commits to sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommitSpec {
    /// `A..B`: A through B inclusive, in first-parent order.
    Range {
        /// The first commit.
        from: String,
        /// The last commit.
        to: String,
    },
    /// `A,B,C`: these revisions, in this order.
    List(Vec<String>),
}

/// A revision as git may take it: not empty, no whitespace, and no leading `-`, so that it is
/// never read as an option.
fn check_rev(spec: &str, rev: &str) -> Result<(), CommitsError> {
    let reason = if rev.is_empty() {
        "an empty revision"
    } else if rev.starts_with('-') {
        "a revision must not start with '-'"
    } else if rev.chars().any(char::is_whitespace) {
        "a revision must not contain whitespace"
    } else if rev.contains("..") {
        "one range at most (A..B), and no A...B"
    } else {
        return Ok(());
    };
    Err(CommitsError::Spec { spec: spec.to_string(), reason: format!("{reason} ({rev:?})") })
}

impl std::str::FromStr for CommitSpec {
    type Err = CommitsError;

    /// `A..B` or `A,B,C`.
    ///
    /// # Errors
    /// [`CommitsError::Spec`] for an empty value or revision, `A...B`, or a revision that starts
    /// with `-` or holds whitespace.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let spec = s.trim();
        if spec.is_empty() {
            return Err(CommitsError::Spec { spec: s.into(), reason: "no commits given".into() });
        }
        if spec.contains("...") {
            return Err(CommitsError::Spec {
                spec: s.into(),
                reason: "A...B (symmetric difference) is not a sweep; use A..B".into(),
            });
        }
        if let Some((from, to)) = spec.split_once("..") {
            if spec.contains(',') {
                return Err(CommitsError::Spec { spec: s.into(), reason: "either A..B or a list, not both".into() });
            }
            let (from, to) = (from.trim(), to.trim());
            check_rev(s, from)?;
            check_rev(s, to)?;
            return Ok(CommitSpec::Range { from: from.into(), to: to.into() });
        }
        let revs: Vec<String> = spec.split(',').map(|r| r.trim().to_string()).collect();
        for r in &revs {
            check_rev(s, r)?;
        }
        Ok(CommitSpec::List(revs))
    }
}

/// Runs git in `repo`; its trimmed stdout.
fn git(repo: &Path, args: &[&str]) -> Result<String, CommitsError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| CommitsError::Git { args: args.join(" "), reason: format!("cannot run git: {e}") })?;
    if !out.status.success() {
        return Err(CommitsError::Git {
            args: args.join(" "),
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The full id of the commit `rev` names.
fn rev_parse(repo: &Path, rev: &str) -> Result<String, CommitsError> {
    git(repo, &["rev-parse", "--verify", "--end-of-options", &format!("{rev}^{{commit}}")])
}

impl CommitSpec {
    /// The full commit ids, in sweep order.
    ///
    /// # Errors
    /// [`CommitsError::Git`] for a revision that is not a commit of `repo`;
    /// [`CommitsError::Spec`] for a range whose start is not on its end's first-parent history.
    pub fn resolve(&self, repo: &Path) -> Result<Vec<String>, CommitsError> {
        match self {
            CommitSpec::List(revs) => revs.iter().map(|r| rev_parse(repo, r)).collect(),
            CommitSpec::Range { from, to } => {
                let (a, b) = (rev_parse(repo, from)?, rev_parse(repo, to)?);
                // `A^..B` includes A; a root commit has no `A^`, and then B's whole first-parent
                // history is the range.
                let range = match rev_parse(repo, &format!("{a}^")) {
                    Ok(parent) => format!("{parent}..{b}"),
                    Err(_) => b.clone(),
                };
                let list = git(repo, &["rev-list", "--reverse", "--first-parent", &range])?;
                let shas: Vec<String> = list.lines().map(str::to_string).collect();
                if shas.first() != Some(&a) {
                    return Err(CommitsError::Spec {
                        spec: format!("{from}..{to}"),
                        reason: format!("{from} is not on the first-parent history of {to}"),
                    });
                }
                Ok(shas)
            }
        }
    }
}

/// Where one commit's files live: `work_dir/<sha>/{src,target,build.log,...}`. Every commit's
/// directory has the same shape and its name the same length, so that relative paths from the
/// build tree to the sources are identical across commits (what lets ccache's `base_dir` hit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitLayout {
    /// `work_dir/<sha>`: ccache's base directory for this commit's build.
    pub root: PathBuf,
}

impl CommitLayout {
    /// The layout of `sha` (a full commit id) under `work_dir`.
    pub fn new(work_dir: &Path, sha: &str) -> Self {
        CommitLayout { root: work_dir.join(sha) }
    }
    /// The worktree.
    pub fn src(&self) -> PathBuf {
        self.root.join("src")
    }
    /// Cargo's target directory.
    pub fn target(&self) -> PathBuf {
        self.root.join("target")
    }
    /// The build's output.
    pub fn build_log(&self) -> PathBuf {
        self.root.join("build.log")
    }
    /// The suite's output.
    pub fn suite_log(&self) -> PathBuf {
        self.root.join("suite.log")
    }
    /// The suite's records (`--save-jsonl`).
    pub fn records(&self) -> PathBuf {
        self.root.join("records.jsonl")
    }
    /// ccache's per-build statistics log (`CCACHE_STATSLOG`).
    pub fn ccache_log(&self) -> PathBuf {
        self.root.join("ccache-stats.log")
    }
    /// The built benchkit.
    pub fn binary(&self) -> PathBuf {
        self.target().join("release").join(format!("benchkit{}", std::env::consts::EXE_SUFFIX))
    }

    /// The build command: `cargo build --release --bin benchkit` of `benchkit_src` against this
    /// commit's worktree, into this commit's target directory, ccache's paths made relative to
    /// [`root`](Self::root).
    pub fn build_command(&self, cargo: &Path, benchkit_src: &Path, cargo_args: &[String]) -> Command {
        let mut cmd = Command::new(cargo);
        cmd.arg("build")
            .arg("--release")
            .arg("--bin")
            .arg("benchkit")
            .arg("--manifest-path")
            .arg(benchkit_src.join("Cargo.toml"))
            .args(cargo_args)
            .current_dir(benchkit_src)
            .env("LLAMA_CPP_DIR", self.src())
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .env("CARGO_TARGET_DIR", self.target())
            .env("CCACHE_BASEDIR", &self.root)
            // The build directory's absolute path would otherwise enter the hash of objects
            // with debug information.
            .env("CCACHE_NOHASHDIR", "1")
            .env("CCACHE_STATSLOG", self.ccache_log())
            .stdin(Stdio::null());
        cmd
    }
}

/// ccache's results for one build, from its statistics log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CcacheStats {
    /// Compilations answered from the cache (direct or preprocessed).
    pub hits: u64,
    /// Compilations that ran the compiler and were cached.
    pub misses: u64,
}

impl CcacheStats {
    /// Counts a `CCACHE_STATSLOG` file's results (one per line, `# path` lines between).
    pub fn parse(text: &str) -> Self {
        let mut s = CcacheStats::default();
        for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
            if line.ends_with("_hit") {
                s.hits += 1;
            } else if line == "cache_miss" {
                s.misses += 1;
            }
        }
        s
    }
}

/// What happened to one commit.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CommitOutcome {
    /// The full commit id.
    pub sha: String,
    /// `ok`, `build_failed` or `failed` (the suite produced no records or exited with an error).
    pub status: String,
    /// The stored run.
    pub run_id: Option<RunId>,
    /// What went wrong.
    pub error: Option<String>,
    /// How many records were stored.
    pub records: usize,
    /// How long the build took.
    pub build_time: Duration,
    /// The build's log.
    pub build_log: PathBuf,
    /// ccache's results for this build, when ccache wrote its statistics log.
    pub ccache: Option<CcacheStats>,
}

/// Two consecutive successfully measured commits.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Comparison {
    /// The earlier commit.
    pub baseline: String,
    /// The later one.
    pub candidate: String,
    /// The earlier commit's run.
    pub baseline_run: RunId,
    /// The later commit's run.
    pub candidate_run: RunId,
    /// Test by test, those measured in both.
    pub result: crate::store::compare::Comparison,
}

impl Comparison {
    /// Whether any test regressed.
    pub fn has_regression(&self) -> bool {
        self.result.has_regression()
    }
}

/// A sweep's result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SweepReport {
    /// Each commit, in sweep order.
    pub commits: Vec<CommitOutcome>,
    /// Each pair of consecutive measured commits.
    pub comparisons: Vec<Comparison>,
    /// Consecutive measured commits whose records do not join (the suite changed between
    /// them), with the reason.
    pub incomparable: Vec<String>,
}

impl SweepReport {
    /// Whether any comparison flags a regression.
    pub fn has_regression(&self) -> bool {
        self.comparisons.iter().any(Comparison::has_regression)
    }
}

/// What a sweep reports as it goes.
#[derive(Debug)]
#[non_exhaustive]
pub enum Progress<'a> {
    /// The commits were resolved.
    Resolved {
        /// Full ids, in sweep order.
        commits: &'a [String],
    },
    /// A build starts.
    Building {
        /// 0-based.
        index: usize,
        /// How many commits.
        total: usize,
        /// The commit.
        sha: &'a str,
        /// Its build log.
        log: &'a Path,
    },
    /// A build finished.
    Built {
        /// The commit.
        sha: &'a str,
        /// Whether it succeeded.
        ok: bool,
        /// How long it took.
        elapsed: Duration,
        /// ccache's results.
        ccache: Option<CcacheStats>,
    },
    /// The suite starts on a built commit.
    Running {
        /// The commit.
        sha: &'a str,
    },
    /// A commit is done.
    Done(&'a CommitOutcome),
}

/// A commit sweep (see the [module](self) documentation).
#[derive(Debug, Clone)]
pub struct CommitSweep {
    /// The llama.cpp repository.
    pub repo: PathBuf,
    /// The commits.
    pub commits: CommitSpec,
    /// The suite: `bench ARGS...` (the built benchkit's subcommand and flags).
    pub suite_args: Vec<String>,
    /// The store (a SQLite path or `postgres://` URL).
    pub store: String,
    /// Where each commit's worktree, target directory and logs go.
    pub work_dir: PathBuf,
    /// benchkit's workspace, built against each commit.
    pub benchkit_src: PathBuf,
    /// Leave the worktrees in place.
    pub keep_worktrees: bool,
    /// Leave every commit's target directory in place (by default only the newest is kept, as
    /// the next sweep's starting point).
    pub keep_targets: bool,
    /// Extra arguments to `cargo build` (e.g. `--no-default-features`, `--features cuda`).
    pub cargo_args: Vec<String>,
    /// The stored runs' label.
    pub label: Option<String>,
    /// A slowdown (or speedup) smaller than this fraction is no change (default 0.02).
    pub threshold: f64,
    /// The largest Mann-Whitney p that counts as a change (default 0.05).
    pub alpha: f64,
}

impl CommitSweep {
    /// A sweep with the default options.
    pub fn new(
        repo: impl Into<PathBuf>,
        commits: CommitSpec,
        suite_args: Vec<String>,
        store: impl Into<String>,
        work_dir: impl Into<PathBuf>,
        benchkit_src: impl Into<PathBuf>,
    ) -> Self {
        CommitSweep {
            repo: repo.into(),
            commits,
            suite_args,
            store: store.into(),
            work_dir: work_dir.into(),
            benchkit_src: benchkit_src.into(),
            keep_worktrees: false,
            keep_targets: false,
            cargo_args: Vec::new(),
            label: None,
            threshold: 0.02,
            alpha: 0.05,
        }
    }

    fn check(&self) -> Result<(), CommitsError> {
        match self.suite_args.first().map(String::as_str) {
            Some("bench") => {}
            _ => return Err(CommitsError::Suite(self.suite_args.join(" "))),
        }
        for a in &self.suite_args[1..] {
            let flag = a.split('=').next().unwrap_or_default();
            if ["--save-jsonl", "--store", "--save_jsonl"].contains(&flag) {
                return Err(CommitsError::SuiteFlag(flag.to_string()));
            }
        }
        let manifest = std::fs::read_to_string(self.benchkit_src.join("Cargo.toml")).unwrap_or_default();
        if !manifest.contains("name = \"benchkit\"") {
            return Err(CommitsError::BenchkitSrc(self.benchkit_src.clone()));
        }
        Ok(())
    }

    /// Runs the sweep: builds, measures and stores each commit, then compares consecutive ones.
    ///
    /// # Errors
    /// [`CommitsError`] for a bad suite or source, a revision git does not know, a store that
    /// cannot be opened or written, or a work directory that cannot be written. A commit that
    /// fails to build or measure is an outcome, not an error.
    pub fn run(&self, progress: &mut dyn FnMut(&Progress)) -> Result<SweepReport, CommitsError> {
        self.check()?;
        let store = Store::open(&self.store)?;
        let shas = self.commits.resolve(&self.repo)?;
        progress(&Progress::Resolved { commits: &shas });
        std::fs::create_dir_all(&self.work_dir).map_err(io_err("cannot create", &self.work_dir))?;
        let work_dir = self.work_dir.canonicalize().map_err(io_err("cannot resolve", &self.work_dir))?;
        let cargo = PathBuf::from(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));

        let mut outcomes = Vec::with_capacity(shas.len());
        let mut previous_target = newest_target(&work_dir);
        for (index, sha) in shas.iter().enumerate() {
            let layout = CommitLayout::new(&work_dir, sha);
            std::fs::create_dir_all(&layout.root).map_err(io_err("cannot create", &layout.root))?;
            if let Some(prev) = previous_target.as_deref().filter(|p| *p != layout.target()) {
                seed_target(prev, &layout.target())?;
            }
            let outcome = self.commit(&store, &cargo, &layout, sha, index, shas.len(), progress)?;
            progress(&Progress::Done(&outcome));
            outcomes.push(outcome);
            if let Some(prev) = previous_target.replace(layout.target()).filter(|p| *p != layout.target()) {
                if !self.keep_targets {
                    // Only its logs stay; the newest target seeds the next commit.
                    std::fs::remove_dir_all(&prev).map_err(io_err("cannot remove", &prev))?;
                }
            }
        }
        let (comparisons, incomparable) = self.compare(&store, &outcomes)?;
        Ok(SweepReport { commits: outcomes, comparisons, incomparable })
    }

    /// Builds, measures and stores one commit; its worktree is removed whatever happens.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        store: &Store,
        cargo: &Path,
        layout: &CommitLayout,
        sha: &str,
        index: usize,
        total: usize,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<CommitOutcome, CommitsError> {
        let short = git(&self.repo, &["rev-parse", "--short", sha])?;
        let build_number: u64 = git(&self.repo, &["rev-list", "--count", sha])?.parse().unwrap_or(0);
        let worktree = Worktree::add(&self.repo, &layout.src(), sha, self.keep_worktrees)?;

        let log = layout.build_log();
        progress(&Progress::Building { index, total, sha, log: &log });
        let _ = std::fs::remove_file(layout.ccache_log());
        let start = Instant::now();
        let built = run_logged(layout.build_command(cargo, &self.benchkit_src, &self.cargo_args), &log)?;
        let build_time = start.elapsed();
        let ccache = std::fs::read_to_string(layout.ccache_log()).ok().map(|t| CcacheStats::parse(&t));
        // The binary must be this commit's: a stale one would measure another llama.cpp.
        let check = if built { binary_commit(&layout.binary(), sha) } else { Err(tail(&log, LOG_TAIL_LINES)) };
        progress(&Progress::Built { sha, ok: check.is_ok(), elapsed: build_time, ccache });
        let mut outcome = CommitOutcome {
            sha: sha.to_string(),
            status: "ok".into(),
            run_id: None,
            error: None,
            records: 0,
            build_time,
            build_log: log.clone(),
            ccache,
        };
        if let Err(error) = check {
            let mut meta = self.run_meta(None, &short, build_number, sha);
            meta.status = "build_failed".into();
            meta.error = Some(error.clone());
            outcome.run_id = Some(store.insert_run(&meta)?);
            outcome.status = meta.status;
            outcome.error = Some(error);
            drop(worktree);
            return Ok(outcome);
        }

        progress(&Progress::Running { sha });
        let records_path = layout.records();
        let _ = std::fs::remove_file(&records_path);
        let mut suite = Command::new(layout.binary());
        suite
            .args(&self.suite_args)
            .arg("--save-jsonl")
            .arg(&records_path)
            // The child must not store on its own too (`--store`'s environment default).
            .env_remove("BENCHKIT_STORE")
            .stdin(Stdio::null());
        let suite_ok = run_logged(suite, &layout.suite_log())?;
        drop(worktree);

        let (records, bad_lines) = read_records(&records_path)?;
        let failed = |why: String| {
            let mut e = why;
            let t = tail(&layout.suite_log(), LOG_TAIL_LINES);
            if !t.is_empty() {
                e.push('\n');
                e.push_str(&t);
            }
            e
        };
        let provenance = records.first().map(|r| &r.provenance);
        let mut meta = self.run_meta(provenance, &short, build_number, sha);
        if records.is_empty() {
            meta.status = "failed".into();
            meta.error = Some(failed("the suite produced no records".into()));
        }
        let run = store.insert_run(&meta)?;
        for r in &records {
            store.insert_record(run, &StoredRecord::from(r))?;
        }
        if !records.is_empty() && (!suite_ok || bad_lines > 0) {
            let why = if suite_ok {
                format!("{bad_lines} unreadable line(s) in {}", records_path.display())
            } else {
                "the suite exited with an error".to_string()
            };
            meta.status = "failed".into();
            meta.error = Some(failed(why));
            store.set_run_status(run, &meta.status, meta.error.as_deref())?;
        }
        outcome.run_id = Some(run);
        outcome.records = records.len();
        outcome.status = meta.status;
        outcome.error = meta.error;
        Ok(outcome)
    }

    /// The run of `sha`: from its records' provenance when there are records (the built
    /// benchkit's), else from this process's machine description with the commit's build.
    fn run_meta(&self, provenance: Option<&crate::Provenance>, short: &str, build_number: u64, sha: &str) -> RunMeta {
        let mut meta = match provenance {
            Some(p) => RunMeta::from_provenance("bench", p),
            None => {
                let p = crate::Provenance::now();
                let mut m = RunMeta::from_provenance("bench", &p);
                // This process's build is not the commit's: keep only the machine.
                m.provenance = serde_json::json!({ "system": p.system });
                m
            }
        };
        // llama-sys reports a worktree's commit; if it could not, the sweep knows it.
        if meta.build_commit.is_empty() || meta.build_commit == "unknown" || !sha.starts_with(&meta.build_commit) {
            meta.build_commit = short.to_string();
        }
        if meta.build_number == 0 {
            meta.build_number = build_number;
        }
        if let serde_json::Value::Object(o) = &mut meta.provenance {
            o.insert(
                "commit_sweep".into(),
                serde_json::json!({
                    "repo": self.repo.display().to_string(),
                    "commit": sha,
                    "suite": self.suite_args,
                    "cargo_args": self.cargo_args,
                }),
            );
        }
        meta.label(self.label.clone())
    }

    /// Compares each measured commit with the previous measured one.
    fn compare(
        &self,
        store: &Store,
        outcomes: &[CommitOutcome],
    ) -> Result<(Vec<Comparison>, Vec<String>), CommitsError> {
        let measured: Vec<(&CommitOutcome, RunId)> =
            outcomes.iter().filter(|o| o.records > 0).filter_map(|o| o.run_id.map(|r| (o, r))).collect();
        let mut out = Vec::new();
        let mut out_errors = Vec::new();
        for pair in measured.windows(2) {
            let [(a, ra), (b, rb)] = pair else { continue };
            let run = |r: RunId| Filter::parse(&format!("run={}", r.0));
            let mut config = CompareConfig::new(run(*ra)?, run(*rb)?);
            config.metrics = vec!["ts".into()];
            config.threshold = self.threshold;
            config.alpha = self.alpha;
            let entries = store.entries(&run(*ra)?)?.into_iter().chain(store.entries(&run(*rb)?)?).collect::<Vec<_>>();
            // Two measured runs of one suite always join; a suite changed in between does not,
            // and that is a finding of the sweep, not an error that loses it.
            let result = match compare(&entries, &config) {
                Ok(c) => c,
                Err(e) => {
                    out_errors.push(format!("{} -> {}: {e}", a.sha, b.sha));
                    continue;
                }
            };
            out.push(Comparison {
                baseline: a.sha.clone(),
                candidate: b.sha.clone(),
                baseline_run: *ra,
                candidate_run: *rb,
                result,
            });
        }
        Ok((out, out_errors))
    }
}

/// A detached worktree, removed when dropped (unless kept).
struct Worktree {
    repo: PathBuf,
    path: PathBuf,
    keep: bool,
}

impl Worktree {
    fn add(repo: &Path, path: &Path, sha: &str, keep: bool) -> Result<Self, CommitsError> {
        let p = path.to_string_lossy().into_owned();
        if path.exists() {
            // Left by an interrupted sweep: git refuses to add over it.
            let _ = git(repo, &["worktree", "remove", "--force", &p]);
            let _ = std::fs::remove_dir_all(path);
        }
        let _ = git(repo, &["worktree", "prune"]);
        git(repo, &["worktree", "add", "--detach", "--force", &p, sha])?;
        Ok(Worktree { repo: repo.to_path_buf(), path: path.to_path_buf(), keep })
    }
}

impl Drop for Worktree {
    fn drop(&mut self) {
        if !self.keep {
            let p = self.path.to_string_lossy().into_owned();
            if git(&self.repo, &["worktree", "remove", "--force", &p]).is_err() {
                let _ = std::fs::remove_dir_all(&self.path);
                let _ = git(&self.repo, &["worktree", "prune"]);
            }
        }
    }
}

/// Runs `cmd` with stdout and stderr appended to `log`; whether it succeeded.
fn run_logged(mut cmd: Command, log: &Path) -> Result<bool, CommitsError> {
    let file = File::create(log).map_err(io_err("cannot create", log))?;
    let err = file.try_clone().map_err(io_err("cannot write", log))?;
    let program = PathBuf::from(cmd.get_program());
    let status = cmd.stdout(file).stderr(err).status().map_err(io_err("cannot run", &program))?;
    Ok(status.success())
}

/// The last `n` lines of a log (at most its last 64 KiB are read).
pub fn tail(path: &Path, n: usize) -> String {
    let Ok(mut f) = File::open(path) else { return String::new() };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Checks that `binary` is built from `sha`: `bench --version` names its llama.cpp commit.
fn binary_commit(binary: &Path, sha: &str) -> Result<(), String> {
    let out = Command::new(binary)
        .args(["bench", "--version"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("the build left no runnable {}: {e}", binary.display()))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    match version_commit(&text) {
        Some(c) if sha.starts_with(c) => Ok(()),
        Some(c) => Err(format!("the built benchkit reports llama.cpp commit {c}, not {sha}")),
        None => Err(format!("`{} bench --version` names no commit: {}", binary.display(), text.trim())),
    }
}

/// The commit of `version: V (build N, commit C)`.
pub fn version_commit(text: &str) -> Option<&str> {
    let rest = &text[text.find("commit ")? + "commit ".len()..];
    let c = &rest[..rest.find(')')?];
    (!c.is_empty()).then_some(c)
}

/// The records of a `--save-jsonl` file and how many lines were unreadable.
fn read_records(path: &Path) -> Result<(Vec<crate::bench::BenchRecord>, usize), CommitsError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(io_err("cannot read", path)(e)),
    };
    let (mut records, mut bad) = (Vec::new(), 0);
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(io_err("cannot read", path))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(&line) {
            Ok(r) => records.push(r),
            Err(_) => bad += 1,
        }
    }
    Ok((records, bad))
}

/// The most recently modified `work_dir/*/target`, to seed the first commit's.
fn newest_target(work_dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(work_dir)
        .ok()?
        .flatten()
        .map(|e| e.path().join("target"))
        .filter(|t| t.join("release").is_dir())
        .max_by_key(|t| t.metadata().and_then(|m| m.modified()).ok())
}

/// Makes `to` (absent) a copy of the target directory `from`, less what belongs to `from`'s
/// commit: llama-sys's build trees (a CMake cache names its source directory, which differs)
/// and the benchkit binary. Cargo then rebuilds llama-sys and what depends on it, and nothing
/// else. Cargo writes target-relative paths in its fingerprints, so the copy is fresh where it
/// should be.
pub fn seed_target(from: &Path, to: &Path) -> Result<(), CommitsError> {
    if to.exists() || !from.is_dir() {
        return Ok(());
    }
    let status = Command::new("cp")
        .arg("-a")
        .arg("--reflink=auto")
        .arg(from)
        .arg(to)
        .status()
        .map_err(io_err("cannot run cp for", to))?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(to);
        return Ok(()); // a full build instead
    }
    for dir in stale_paths(to) {
        let _ = if dir.is_dir() { std::fs::remove_dir_all(&dir) } else { std::fs::remove_file(&dir) };
    }
    Ok(())
}

/// What [`seed_target`] removes from a copied target directory.
pub fn stale_paths(target: &Path) -> Vec<PathBuf> {
    let release = target.join("release");
    let mut out: Vec<PathBuf> = std::fs::read_dir(release.join("build"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("llama-sys-"))
        .map(|e| e.path().join("out"))
        .filter(|p| p.exists())
        .collect();
    out.push(release.join(format!("benchkit{}", std::env::consts::EXE_SUFFIX)));
    out.retain(|p| p.exists());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn ranges_and_lists_parse() {
        assert_eq!(
            "abc..def".parse::<CommitSpec>().unwrap(),
            CommitSpec::Range { from: "abc".into(), to: "def".into() }
        );
        assert_eq!(
            " v1 .. HEAD~2 ".parse::<CommitSpec>().unwrap(),
            CommitSpec::Range { from: "v1".into(), to: "HEAD~2".into() }
        );
        assert_eq!(
            "a, b ,c".parse::<CommitSpec>().unwrap(),
            CommitSpec::List(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!("HEAD".parse::<CommitSpec>().unwrap(), CommitSpec::List(vec!["HEAD".into()]));
    }

    #[test]
    fn bad_specs_are_errors() {
        for bad in
            ["", " ", "a..", "..b", "a...b", "a,,b", "a,", "-x", "a..--upload-pack=x", "a b", "a..b,c", "a..b..c"]
        {
            assert!(matches!(bad.parse::<CommitSpec>(), Err(CommitsError::Spec { .. })), "{bad:?}");
        }
    }

    fn repo() -> (tempfile::TempDir, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let ok = Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(["-c", "user.email=t@t", "-c", "user.name=t", "-c", "commit.gpgsign=false"])
                .args(args)
                .output()
                .unwrap();
            assert!(ok.status.success(), "{args:?}: {}", String::from_utf8_lossy(&ok.stderr));
        };
        run(&["init", "-q"]);
        for i in 0..4 {
            std::fs::write(dir.path().join("f"), i.to_string()).unwrap();
            run(&["add", "f"]);
            run(&["commit", "-qm", &format!("c{i}")]);
        }
        let shas = git(dir.path(), &["rev-list", "--reverse", "HEAD"]).unwrap().lines().map(String::from).collect();
        (dir, shas)
    }

    #[test]
    fn ranges_resolve_inclusively_in_order_also_from_a_root() {
        let (dir, shas) = repo();
        let r = |s: &str| s.parse::<CommitSpec>().unwrap().resolve(dir.path());
        assert_eq!(r(&format!("{}..{}", shas[1], shas[2])).unwrap(), shas[1..3]);
        assert_eq!(r(&format!("{}..HEAD", shas[0])).unwrap(), shas, "root commit");
        assert_eq!(r("HEAD~1..HEAD").unwrap(), shas[2..]);
        assert_eq!(r(&format!("{},{}", &shas[3][..8], shas[0])).unwrap(), vec![shas[3].clone(), shas[0].clone()]);
        // Backwards, and unknown revisions.
        assert!(matches!(r(&format!("{}..{}", shas[2], shas[1])), Err(CommitsError::Spec { .. })));
        assert!(matches!(r("nosuchrev"), Err(CommitsError::Git { .. })));
        assert!(matches!(r("HEAD..nosuchrev"), Err(CommitsError::Git { .. })));
    }

    #[test]
    fn layout_keeps_relative_paths_identical_across_commits() {
        let work = Path::new("/w");
        let (a, b) = (CommitLayout::new(work, &"a".repeat(40)), CommitLayout::new(work, &"b".repeat(40)));
        for (x, y) in [(a.src(), b.src()), (a.target(), b.target()), (a.binary(), b.binary())] {
            assert_eq!(x.strip_prefix(&a.root).unwrap(), y.strip_prefix(&b.root).unwrap());
        }
        assert_eq!(a.src(), Path::new("/w").join("a".repeat(40)).join("src"));
        let cmd = a.build_command(Path::new("cargo"), Path::new("/bk"), &["--no-default-features".into()]);
        let envs: BTreeMap<String, Option<String>> =
            cmd.get_envs().map(|(k, v)| (k.to_string_lossy().into(), v.map(|v| v.to_string_lossy().into()))).collect();
        let root = a.root.display().to_string();
        assert_eq!(envs["CCACHE_BASEDIR"].as_deref(), Some(root.as_str()));
        assert_eq!(envs["CCACHE_NOHASHDIR"].as_deref(), Some("1"));
        assert_eq!(envs["LLAMA_CPP_DIR"].as_deref(), Some(format!("{root}/src").as_str()));
        assert_eq!(envs["CARGO_TARGET_DIR"].as_deref(), Some(format!("{root}/target").as_str()));
        assert_eq!(envs["CARGO_BUILD_TARGET_DIR"], None);
        let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into()).collect();
        assert_eq!(
            args,
            ["build", "--release", "--bin", "benchkit", "--manifest-path", "/bk/Cargo.toml", "--no-default-features"]
        );
    }

    #[test]
    fn seeding_drops_the_previous_commit_s_llama_build_and_binary() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("a/target");
        let rel = from.join("release");
        for d in ["build/llama-sys-1234/out/build", "build/llama-sys-5678", "build/ring-99/out", "deps"] {
            std::fs::create_dir_all(rel.join(d)).unwrap();
        }
        std::fs::write(rel.join("benchkit"), "old").unwrap();
        std::fs::write(rel.join("deps/libfoo.rlib"), "x").unwrap();
        std::fs::write(rel.join("build/llama-sys-5678/build-script-main"), "x").unwrap();
        let to = dir.path().join("b/target");
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        seed_target(&from, &to).unwrap();
        let r = to.join("release");
        assert!(r.join("deps/libfoo.rlib").is_file());
        assert!(r.join("build/ring-99/out").is_dir());
        assert!(r.join("build/llama-sys-5678/build-script-main").is_file());
        assert!(!r.join("build/llama-sys-1234/out").exists());
        assert!(!r.join("benchkit").exists());
        assert!(rel.join("benchkit").exists(), "the source is left alone");
        // An existing target is never overwritten.
        std::fs::write(r.join("marker"), "").unwrap();
        seed_target(&from, &to).unwrap();
        assert!(r.join("marker").exists());
        assert!(newest_target(dir.path()).is_some());
    }

    #[test]
    fn ccache_stats_log_and_version_text_parse() {
        let log = "# /w/x/src/ggml/src/ggml.c\ncache_miss\n# a.c\ndirect_cache_hit\n# b.c\npreprocessed_cache_hit\n";
        assert_eq!(CcacheStats::parse(log), CcacheStats { hits: 2, misses: 1 });
        let v = "version: 0.0.1 (build 3, commit 1a2b3c4)\nbuilt with GNU 12 for Linux x86_64\n";
        assert_eq!(version_commit(v), Some("1a2b3c4"));
        assert_eq!(version_commit("version: x"), None);
        assert_eq!(version_commit("(build 0, commit )"), None);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        std::fs::write(&p, (0..100).map(|i| format!("line {i}\n")).collect::<String>()).unwrap();
        let t = tail(&p, 3);
        assert_eq!(t, "line 97\nline 98\nline 99");
        assert_eq!(tail(&dir.path().join("none"), 3), "");
    }

    #[test]
    fn suites_other_than_bench_and_flags_the_sweep_owns_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mk = |suite: &[&str]| {
            CommitSweep::new(
                dir.path(),
                CommitSpec::List(vec!["HEAD".into()]),
                suite.iter().map(|s| s.to_string()).collect(),
                dir.path().join("s.db").display().to_string(),
                dir.path().join("w"),
                concat!(env!("CARGO_MANIFEST_DIR"), "/.."),
            )
        };
        assert!(matches!(mk(&["perplexity"]).check(), Err(CommitsError::Suite(_))));
        assert!(matches!(mk(&[]).check(), Err(CommitsError::Suite(_))));
        assert!(matches!(mk(&["bench", "--save-jsonl=x"]).check(), Err(CommitsError::SuiteFlag(_))));
        assert!(matches!(mk(&["bench", "--store", "x"]).check(), Err(CommitsError::SuiteFlag(_))));
        mk(&["bench", "-p", "16"]).check().unwrap();
        let mut s = mk(&["bench"]);
        s.benchkit_src = dir.path().to_path_buf();
        assert!(matches!(s.check(), Err(CommitsError::BenchkitSrc(_))));
    }
}
