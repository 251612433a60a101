//! `benchkit rankings` and `benchkit results` (`list`, `serve`): flags and what they mean.

use clap::{Parser, Subcommand, ValueEnum};

use super::CliError;
use crate::store::rankings::{RankBy, RankMetric};
use crate::store::{Filter, Run};

/// The environment variable `--store` falls back to.
pub const STORE_ENV: &str = "BENCHKIT_STORE";

/// `--store`, or `BENCHKIT_STORE`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StoreArg {
    /// The results store: a SQLite file or a `postgres://` URL (default: $BENCHKIT_STORE).
    #[arg(long = "store", value_name = "PATH|URL")]
    pub store: Option<String>,
}

impl StoreArg {
    /// The store to open.
    ///
    /// # Errors
    /// [`CliError::Missing`] when neither `--store` nor `BENCHKIT_STORE` names one.
    pub fn spec(&self) -> Result<String, CliError> {
        self.store
            .clone()
            .or_else(|| std::env::var(STORE_ENV).ok())
            .filter(|s| !s.trim().is_empty())
            .ok_or(CliError::Missing { flag: "--store", why: "it names the results store (or set BENCHKIT_STORE)" })
    }
}

/// `--filter k=v[,k=v...]`, repeatable: all must hold.
pub(crate) fn filter(items: &[String]) -> Result<Filter, CliError> {
    items
        .iter()
        .try_fold(Filter::all(), |f, s| Ok(f.and(&Filter::parse(s).map_err(|e| CliError::invalid("--filter", e))?)))
}

/// Table or JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    /// A markdown table.
    #[default]
    Md,
    /// JSON.
    Json,
}

fn parse_metric(s: &str) -> Result<RankMetric, String> {
    s.parse().map_err(|e: crate::store::rankings::RankError| e.to_string())
}

fn parse_by(s: &str) -> Result<RankBy, String> {
    s.parse().map_err(|e: crate::store::rankings::RankError| e.to_string())
}

/// `benchkit rankings`: rank models, builds or machines by one metric.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "benchkit rankings",
    about = "Rank models, builds or machines by a metric: mean over runs, 95% bootstrap CI, number of runs",
    after_help = "Metrics: ttft, tpot, e2e, rps (replays), pp, tg (bench t/s), ppl, j_per_token.\nOnly records with status ok count; best first."
)]
pub struct RankingsArgs {
    /// The metric: ttft, tpot, e2e, rps, pp, tg, ppl, j_per_token.
    #[arg(long = "metric", value_name = "METRIC", value_parser = parse_metric)]
    pub metric: RankMetric,
    /// What to rank: model, build (commit and build number) or machine.
    #[arg(long = "by", value_name = "KEY", value_parser = parse_by, default_value = "model")]
    pub by: RankBy,
    /// The store.
    #[command(flatten)]
    pub store: StoreArg,
    /// Only records where every `key=value` holds (`model=...`, `n_threads=2`, `commit=a1b2c3`).
    #[arg(long = "filter", value_name = "K=V[,K=V...]")]
    pub filter: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = TableFormat::Md)]
    pub output: TableFormat,
}

impl RankingsArgs {
    /// Parses `argv` (program name first).
    ///
    /// # Errors
    /// clap's error for unknown or malformed flags.
    pub fn try_parse_argv(argv: impl IntoIterator<Item = String>) -> Result<Self, clap::Error> {
        Self::try_parse_from(argv)
    }

    /// The records to rank.
    ///
    /// # Errors
    /// [`CliError::Invalid`] for a malformed `--filter`.
    pub fn filter(&self) -> Result<Filter, CliError> {
        filter(&self.filter)
    }
}

/// `benchkit results`: the store's runs, or the store over HTTP.
#[derive(Debug, Clone, Parser)]
#[command(name = "benchkit results", about = "The store's runs (list) or the store read-only over HTTP (serve)")]
pub struct ResultsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ResultsCommand,
}

impl ResultsArgs {
    /// Parses `argv` (program name first).
    ///
    /// # Errors
    /// clap's error for unknown or malformed flags.
    pub fn try_parse_argv(argv: impl IntoIterator<Item = String>) -> Result<Self, clap::Error> {
        Self::try_parse_from(argv)
    }
}

/// `results list` or `results serve`.
#[derive(Debug, Clone, Subcommand)]
#[non_exhaustive]
pub enum ResultsCommand {
    /// List the runs: id, kind, source, commit, machine, start, status, records.
    List(ListArgs),
    /// Serve the store read-only over HTTP (rankings in llm-benchmark's JSON, runs, records).
    #[cfg(feature = "serve")]
    Serve(ServeArgs),
}

/// `benchkit results list`.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArg,
    /// Only runs where every run-level `key=value` holds (`commit=`, `machine=`, `source=`, `kind=`).
    #[arg(long = "filter", value_name = "K=V[,K=V...]")]
    pub filter: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = TableFormat::Md)]
    pub output: TableFormat,
}

impl ListArgs {
    /// The runs to list.
    ///
    /// # Errors
    /// [`CliError::Invalid`] for a malformed `--filter`.
    pub fn filter(&self) -> Result<Filter, CliError> {
        filter(&self.filter)
    }
}

/// `benchkit results serve`.
#[cfg(feature = "serve")]
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "The API key is read from the environment (never from a flag, so it stays out of shell \
history and process lists); requests carry it in the x-api-key header.")]
pub struct ServeArgs {
    /// The store (opened read-only).
    #[command(flatten)]
    pub store: StoreArg,
    /// The address to listen on; port 0 picks a free one (the bound address is printed).
    #[arg(long = "listen", value_name = "ADDR:PORT", default_value = crate::serve::DEFAULT_LISTEN)]
    pub listen: std::net::SocketAddr,
    /// The environment variable that holds the API key.
    #[arg(long = "api-key-env", value_name = "NAME", default_value = crate::serve::DEFAULT_KEY_ENV)]
    pub api_key_env: String,
    /// Serve without an API key: anyone who can reach the address reads the store.
    #[arg(long = "no-auth")]
    pub no_auth: bool,
    /// Allow a non-loopback --listen address.
    #[arg(long = "allow-remote")]
    pub allow_remote: bool,
}

#[cfg(feature = "serve")]
impl ServeArgs {
    /// The server's configuration, the key read from the environment.
    ///
    /// # Errors
    /// [`CliError::Missing`] without a store; [`crate::serve::ServeError::NoKey`] or
    /// [`crate::serve::ServeError::BadKey`] without a usable key and without `--no-auth`;
    /// [`crate::serve::ServeError::NotLoopback`] for a remote address without `--allow-remote`.
    pub fn config(&self) -> Result<crate::serve::ServeConfig, ServeArgsError> {
        use crate::serve::{check_listen, ApiKey, Auth, ServeConfig};
        let store = self.store.spec()?;
        check_listen(self.listen, self.allow_remote)?;
        let auth = if self.no_auth { Auth::Open } else { Auth::Key(ApiKey::from_env(&self.api_key_env)?) };
        Ok(ServeConfig { store, listen: self.listen, auth, allow_remote: self.allow_remote })
    }
}

/// Why `results serve`'s flags do not make a server.
#[cfg(feature = "serve")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeArgsError {
    /// A flag is missing or malformed.
    #[error(transparent)]
    Cli(#[from] CliError),
    /// No usable key, or a remote address.
    #[error(transparent)]
    Serve(#[from] crate::serve::ServeError),
}

/// The runs as a markdown table, oldest first.
pub fn runs_markdown(runs: &[Run]) -> String {
    let head = ["id", "kind", "source", "commit", "build", "machine", "started_at", "status", "records"];
    let mut rows: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
    for r in runs {
        let m = &r.meta;
        rows.push(vec![
            r.id.0.to_string(),
            m.kind.clone(),
            m.source.clone(),
            m.build_commit.chars().take(8).collect(),
            m.build_number.to_string(),
            m.machine.clone(),
            m.started_at.clone(),
            m.status.clone(),
            r.n_records.to_string(),
        ]);
    }
    for row in &mut rows {
        for cell in row.iter_mut() {
            // A `|` would end the cell.
            *cell = cell.replace('|', "\\|");
        }
    }
    let widths: Vec<usize> =
        (0..head.len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let right = |c: usize| matches!(c, 0 | 4 | 8);
    let line = |r: &[String]| {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, s)| if right(c) { format!("{s:>w$}", w = widths[c]) } else { format!("{s:<w$}", w = widths[c]) })
            .collect();
        format!("| {} |\n", cells.join(" | "))
    };
    let mut out = line(&rows[0]);
    let seps: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(c, w)| format!("-{}{}", "-".repeat(*w), if right(c) { ":" } else { "-" }))
        .collect();
    out.push_str(&format!("|{}|\n", seps.join("|")));
    for r in &rows[1..] {
        out.push_str(&line(r));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        std::iter::once("benchkit".to_string()).chain(s.split_whitespace().map(String::from)).collect()
    }

    #[test]
    fn rankings_flags() {
        let a = RankingsArgs::try_parse_argv(argv("--metric e2e --store s.db --filter model=x --filter n_threads=2"))
            .unwrap();
        assert_eq!((a.metric, a.by, a.output), (RankMetric::E2e, RankBy::Model, TableFormat::Md));
        assert_eq!(a.store.spec().unwrap(), "s.db");
        assert_eq!(a.filter().unwrap().keys().collect::<Vec<_>>(), ["model", "n_threads"]);
        let a = RankingsArgs::try_parse_argv(argv("--metric tg --by build -o json")).unwrap();
        assert_eq!((a.metric, a.by, a.output), (RankMetric::Tg, RankBy::Build, TableFormat::Json));
        assert!(RankingsArgs::try_parse_argv(argv("--metric latency")).is_err());
        assert!(RankingsArgs::try_parse_argv(argv("--metric pp --by gpu")).is_err());
        assert!(RankingsArgs::try_parse_argv(argv("--metric pp --filter nokey")).unwrap().filter().is_err());
    }

    #[cfg(feature = "serve")]
    #[test]
    fn serve_flags_default_to_loopback_and_refuse_remote() {
        let ResultsCommand::Serve(s) =
            ResultsArgs::try_parse_argv(argv("serve --store s.db --no-auth")).unwrap().command
        else {
            panic!("not serve")
        };
        assert_eq!(s.listen.to_string(), crate::serve::DEFAULT_LISTEN);
        assert_eq!(s.api_key_env, crate::serve::DEFAULT_KEY_ENV);
        assert!(matches!(s.config().unwrap().auth, crate::serve::Auth::Open));
        let ResultsCommand::Serve(s) =
            ResultsArgs::try_parse_argv(argv("serve --store s.db --no-auth --listen 0.0.0.0:9000")).unwrap().command
        else {
            panic!("not serve")
        };
        assert!(matches!(s.config(), Err(ServeArgsError::Serve(crate::serve::ServeError::NotLoopback(_)))));
        let ResultsCommand::Serve(s) =
            ResultsArgs::try_parse_argv(argv("serve --store s.db --api-key-env BENCHKIT_TEST_NO_SUCH_KEY_VAR"))
                .unwrap()
                .command
        else {
            panic!("not serve")
        };
        assert!(matches!(s.config(), Err(ServeArgsError::Serve(crate::serve::ServeError::NoKey { .. }))));
    }

    #[test]
    fn runs_table_has_a_row_per_run() {
        let run = Run {
            id: crate::store::RunId(7),
            stored_at: String::new(),
            n_records: 3,
            meta: crate::store::RunMeta {
                kind: "bench".into(),
                source: "benchkit".into(),
                label: None,
                started_at: "2026-01-01T00:00:00Z".into(),
                benchkit_version: None,
                build_commit: "0123456789abcdef".into(),
                build_number: 42,
                machine: "cpu | gpu".into(),
                host: None,
                status: "ok".into(),
                error: None,
                provenance: serde_json::Value::Null,
            },
        };
        let md = runs_markdown(&[run]);
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[2].contains("| 01234567 |") && lines[2].contains("cpu \\| gpu") && lines[2].ends_with("3 |"),
            "{md}"
        );
    }
}
