//! `benchkit replay`'s client self-check flags, as a [`ClientCheckConfig`].

use super::CliError;
use crate::replay::ClientCheckConfig;

/// Thresholds above which a replay flags itself `invalid: client saturated`, and the
/// `/tokenize` comparison of prompt lengths.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientCheckArgs {
    /// Flag the run invalid when the p99 schedule lag (sent - scheduled) exceeds this, ms.
    #[arg(long, value_name = "MS", default_value_t = 1.0)]
    pub max_schedule_lag_ms: f64,
    /// Flag the run invalid (http targets) when the client's CPU exceeds this fraction of the
    /// cores it could use (its runtime's workers, at most the CPUs available).
    #[arg(long, value_name = "FRACTION", default_value_t = 0.9)]
    pub max_client_cpu: f64,
    /// Compare the prompt lengths of at most this many distinct prompts with the server's
    /// /tokenize before the run (http targets; 0: do not).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub tokenize_check: usize,
}

impl ClientCheckArgs {
    /// The configuration.
    ///
    /// # Errors
    /// [`CliError::Invalid`] for a lag or CPU threshold that is not a finite number > 0.
    pub fn config(&self) -> Result<ClientCheckConfig, CliError> {
        let positive = |flag: &'static str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(v)
            } else {
                Err(CliError::invalid(flag, format!("{v} is not a finite number > 0")))
            }
        };
        Ok(ClientCheckConfig {
            max_schedule_lag_ms: positive("--max-schedule-lag-ms", self.max_schedule_lag_ms)?,
            max_client_cpu: positive("--max-client-cpu", self.max_client_cpu)?,
            tokenize_limit: self.tokenize_check,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ClientCheckArgs;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        check: ClientCheckArgs,
    }

    fn parse(flags: &str) -> ClientCheckArgs {
        Cli::try_parse_from(std::iter::once("x").chain(flags.split_whitespace())).unwrap().check
    }

    #[test]
    fn defaults_and_overrides() {
        let c = parse("").config().unwrap();
        assert_eq!(c, crate::replay::ClientCheckConfig::default());
        let c = parse("--max-schedule-lag-ms 2.5 --max-client-cpu 0.5 --tokenize-check 0").config().unwrap();
        assert_eq!((c.max_schedule_lag_ms, c.max_client_cpu, c.tokenize_limit), (2.5, 0.5, 0));
        for bad in ["--max-schedule-lag-ms 0", "--max-client-cpu=-1", "--max-client-cpu inf"] {
            let e = parse(bad).config().unwrap_err().to_string();
            assert!(e.contains(bad.split([' ', '=']).next().unwrap()), "{bad}: {e}");
        }
    }
}
