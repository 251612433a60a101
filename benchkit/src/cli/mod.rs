//! The `benchkit` command's flags: clap argument structs with llama.cpp's spellings, their
//! defaults, and their translation into the library's configurations. The binary parses and
//! prints; everything a flag means is decided here, where it is unit-tested, so that the Python
//! bindings and other front ends need not re-derive it.
//!
//! Built with the `cli` feature (it pulls in clap); each subcommand's module with its capability.

#[cfg(feature = "bench")]
pub mod bench;
#[cfg(all(feature = "store", feature = "bench"))]
pub mod commits;
#[cfg(feature = "experiment")]
pub mod experiment;
#[cfg(feature = "perplexity")]
pub mod perplexity;
#[cfg(feature = "placement")]
pub mod placement;
#[cfg(feature = "replay")]
pub mod replay;
#[cfg(feature = "replay")]
pub mod replay_check;
#[cfg(feature = "replay")]
pub mod replay_dataset;
#[cfg(feature = "replay")]
pub mod replay_shard;
#[cfg(feature = "replay")]
pub mod replay_sweep;
#[cfg(feature = "report")]
pub mod report;
#[cfg(feature = "store")]
pub mod results;
#[cfg(feature = "store")]
pub mod store;

/// A command line whose flags are well-formed but whose values mean nothing runnable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// A value that is not one of a parameter's names.
    #[error(transparent)]
    Value(#[from] crate::ParseValueError),
    /// A bench value list, range or grid that is invalid.
    #[cfg(feature = "bench")]
    #[error(transparent)]
    Param(#[from] crate::bench::ParamError),
    /// A flag's value is out of range or malformed.
    #[error("{flag}: {reason}")]
    Invalid {
        /// The flag as the user spelled it.
        flag: &'static str,
        /// What is wrong and what it takes.
        reason: String,
    },
    /// A flag that the chosen mode needs was not given.
    #[error("{flag} is required: {why}")]
    Missing {
        /// The flag.
        flag: &'static str,
        /// What needs it.
        why: &'static str,
    },
    /// A placement arm or arms file that is invalid.
    #[cfg(feature = "placement")]
    #[error(transparent)]
    Placement(#[from] crate::placement::PlacementError),
    /// A file a flag names could not be read.
    #[error("{flag} {}: {source}", path.display())]
    File {
        /// The flag.
        flag: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A flag benchkit refuses on purpose.
    #[error("{0}")]
    Refused(&'static str),
}

impl CliError {
    /// [`CliError::Invalid`] for `flag`.
    pub fn invalid(flag: &'static str, reason: impl std::fmt::Display) -> Self {
        CliError::Invalid { flag, reason: reason.to_string() }
    }
}

/// Telemetry flags, shared by every subcommand that measures.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TelemetryArgs {
    /// Sample nothing (CPU, memory, energy and GPU figures then say `telemetry off`).
    #[arg(long = "no-telemetry")]
    pub no_telemetry: bool,
    /// Milliseconds between telemetry samples (phases are sampled on top).
    #[arg(long = "telemetry-interval", value_name = "MS", default_value_t = 100)]
    pub telemetry_interval: u64,
    /// Append every telemetry sample and phase mark to this JSONL file.
    #[arg(long = "telemetry-series", value_name = "FILE")]
    pub telemetry_series: Option<std::path::PathBuf>,
}

impl TelemetryArgs {
    /// The configuration.
    ///
    /// # Errors
    /// [`CliError::Invalid`] for an interval of 0.
    pub fn config(&self) -> Result<crate::telemetry::TelemetryConfig, CliError> {
        if self.telemetry_interval == 0 {
            return Err(CliError::invalid("--telemetry-interval", "0 is not a number of milliseconds > 0"));
        }
        Ok(crate::telemetry::TelemetryConfig {
            enabled: !self.no_telemetry,
            interval: std::time::Duration::from_millis(self.telemetry_interval),
            series: self.telemetry_series.clone(),
            ..crate::telemetry::TelemetryConfig::default()
        })
    }
}

/// A time flag in seconds: finite and > 0 (`Duration::from_secs_f64` would panic on the rest).
pub(crate) fn seconds(flag: &'static str, secs: f64) -> Result<std::time::Duration, CliError> {
    match std::time::Duration::try_from_secs_f64(secs) {
        Ok(d) if secs > 0.0 => Ok(d),
        _ => Err(CliError::invalid(flag, format!("{secs} is not a number of seconds > 0"))),
    }
}

/// Supervised workers, each trial killed after `timeout` seconds when one is given, unless
/// `in_process`.
#[cfg_attr(not(any(feature = "bench", feature = "perplexity", feature = "replay")), allow(dead_code))]
pub(crate) fn isolation(
    in_process: bool,
    flag: &'static str,
    timeout: Option<f64>,
) -> Result<crate::supervise::Isolation, CliError> {
    if in_process {
        return Ok(crate::supervise::Isolation::InProcess);
    }
    Ok(crate::supervise::Isolation::worker(timeout.map(|t| seconds(flag, t)).transpose()?))
}

/// llama.cpp's multi-letter single-dash flags (`-ngl`) rewritten as the `--ngl` clap reads, and
/// `_` in a `--long_name` as `-` (llama-bench takes `--n_prompt` for `--n-prompt`).
#[cfg_attr(not(any(feature = "bench", feature = "perplexity")), allow(dead_code))]
pub(crate) fn normalize_argv(argv: impl IntoIterator<Item = String>, single_dash: &[&str]) -> Vec<String> {
    argv.into_iter()
        .map(|a| {
            if single_dash.contains(&a.as_str()) {
                return format!("-{a}");
            }
            match a.strip_prefix("--") {
                Some(rest) => {
                    let (name, value) = rest.split_once('=').map_or((rest, None), |(n, v)| (n, Some(v)));
                    let name = name.replace('_', "-");
                    value.map_or_else(|| format!("--{name}"), |v| format!("--{name}={v}"))
                }
                None => a,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::normalize_argv;

    #[test]
    fn bad_seconds_are_errors_not_panics() {
        for bad in [-1.0, 0.0, f64::NAN, f64::INFINITY, 1e300] {
            assert!(super::seconds("--timeout", bad).is_err(), "{bad}");
        }
        assert_eq!(super::seconds("--timeout", 1.5).unwrap(), std::time::Duration::from_millis(1500));
    }

    #[test]
    fn single_dash_and_underscore_spellings_become_clap_long_flags() {
        let argv = ["prog", "-ngl", "99", "--n_prompt=512", "--batch_size", "-t", "-x"].map(String::from);
        assert_eq!(
            normalize_argv(argv, &["-ngl"]),
            ["prog", "--ngl", "99", "--n-prompt=512", "--batch-size", "-t", "-x"]
        );
        // Values are left alone, `_` included.
        assert_eq!(normalize_argv(["--ctk=q8_0".to_string()], &[]), ["--ctk=q8_0"]);
    }
}
