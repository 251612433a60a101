//! `benchkit replay`'s sweep flags: a list of rates (`--request-rate 1,2,4`), a saturation
//! sweep (`--sweep saturation`) or a max-rate search under SLOs (`--slo ... --search
//! max-rate`), as a [`SweepConfig`]. Without them a replay is one run, as before.

use super::replay::ReplayArgs;
use super::CliError;
use crate::replay::sweep::{SaturationConfig, SearchConfig, Slo, SweepConfig, SweepPlan};
use crate::replay::RequestRate;
use std::path::PathBuf;

/// Sweep flags (flattened into [`ReplayArgs`]).
#[derive(Debug, Clone, clap::Args)]
pub struct SweepArgs {
    /// `saturation`: raise the rate from --sweep-start by --sweep-factor until the achieved
    /// throughput grows by less than --saturation-gain, or falls below
    /// --saturation-efficiency of the offered rate.
    #[arg(long, value_name = "MODE")]
    pub sweep: Option<String>,
    /// First rate of a saturation sweep, req/s.
    #[arg(long, value_name = "RATE", default_value_t = 1.0)]
    pub sweep_start: f64,
    /// Rate growth per step (saturation sweeps, and max-rate bracketing).
    #[arg(long, default_value_t = 2.0)]
    pub sweep_factor: f64,
    /// At most this many runs in a saturation sweep.
    #[arg(long, default_value_t = 8)]
    pub sweep_max_steps: usize,
    /// Saturated when the achieved throughput grows by less than this fraction.
    #[arg(long, default_value_t = 0.05)]
    pub saturation_gain: f64,
    /// Saturated when achieved / offered rate falls below this.
    #[arg(long, default_value_t = 0.5)]
    pub saturation_efficiency: f64,
    /// Objectives over a whole run, `metric:pNN:threshold` (metrics ttft, tpot, itl, e2el,
    /// ttft_from_scheduled, e2el_from_scheduled; units us, ms, s), e.g.
    /// `ttft:p99:500ms,tpot:p99:50ms`. A run meets them when all hold and no request failed.
    #[arg(long, value_name = "OBJECTIVES")]
    pub slo: Option<String>,
    /// `max-rate`: the largest rate meeting --slo, bracketed from --search-min by
    /// --sweep-factor, then bisected to --search-tolerance.
    #[arg(long, value_name = "GOAL")]
    pub search: Option<String>,
    /// Lowest rate of a max-rate search, req/s.
    #[arg(long, value_name = "RATE", default_value_t = 1.0)]
    pub search_min: f64,
    /// Highest rate of a max-rate search, req/s.
    #[arg(long, value_name = "RATE", default_value_t = 64.0)]
    pub search_max: f64,
    /// The search stops when the first failing rate is within this fraction above the last
    /// passing one.
    #[arg(long, default_value_t = 0.1)]
    pub search_tolerance: f64,
    /// Write the throughput-latency curve as CSV (a line per run, as each ends).
    #[arg(long, value_name = "FILE")]
    pub sweep_csv: Option<PathBuf>,
}

/// `--request-rate`'s rates: `inf` or req/s, comma-separated.
///
/// # Errors
/// [`CliError::Value`] for an item that is neither `inf` nor a rate > 0.
pub fn rates(spec: &str) -> Result<Vec<RequestRate>, CliError> {
    Ok(spec.split(',').map(str::parse).collect::<Result<_, _>>()?)
}

/// The rate that sets a list's arrival process (its first finite one: `inf` has none), so
/// that `--burstiness` and `--constant-rate` apply to every rate of the list.
///
/// # Errors
/// As [`rates`].
pub fn template_rate(spec: &str) -> Result<RequestRate, CliError> {
    let rates = rates(spec)?;
    Ok(rates.iter().copied().find(|r| matches!(r, RequestRate::PerSecond(_))).unwrap_or(rates[0]))
}

impl SweepArgs {
    /// The sweep the flags ask for over `request_rate` (`--request-rate`'s value); `None` for
    /// a single run (one rate and no sweep flag).
    ///
    /// # Errors
    /// [`CliError`] for an unknown mode, a rate list combined with a mode, malformed
    /// objectives, or bad sweep parameters.
    pub fn config(&self, request_rate: &str) -> Result<Option<SweepConfig>, CliError> {
        let rates = rates(request_rate)?;
        let slo = self.slo.as_deref().map(str::parse::<Slo>).transpose().map_err(|e| CliError::invalid("--slo", e))?;
        let plan = match (self.sweep.as_deref(), self.search.as_deref()) {
            (Some(_), Some(_)) => return Err(CliError::invalid("--search", "choose --sweep or --search, not both")),
            (Some("saturation"), None) => Some(SweepPlan::Saturation(SaturationConfig {
                start: self.sweep_start,
                factor: self.sweep_factor,
                max_steps: self.sweep_max_steps,
                min_gain: self.saturation_gain,
                min_efficiency: self.saturation_efficiency,
            })),
            (Some(other), None) => return Err(CliError::invalid("--sweep", format!("{other:?}: expected saturation"))),
            (None, Some("max-rate")) => Some(SweepPlan::MaxRate(SearchConfig {
                min: self.search_min,
                max: self.search_max,
                factor: self.sweep_factor,
                tolerance: self.search_tolerance,
            })),
            (None, Some(other)) => return Err(CliError::invalid("--search", format!("{other:?}: expected max-rate"))),
            (None, None) => None,
        };
        let plan = match plan {
            Some(_) if rates.len() > 1 => {
                return Err(CliError::invalid(
                    "--request-rate",
                    "a list of rates is a sweep of its own: drop --sweep/--search",
                ))
            }
            Some(p) => p,
            None if rates.len() == 1 && slo.is_none() && self.sweep_csv.is_none() => return Ok(None),
            None => SweepPlan::Rates { rates },
        };
        let config = SweepConfig { plan, slo };
        let flag = if self.search.is_some() { "--search" } else { "--sweep" };
        config.validate().map_err(|e| CliError::invalid(flag, e))?;
        Ok(Some(config))
    }
}

impl ReplayArgs {
    /// [`SweepArgs::config`] over this command line's `--request-rate`.
    ///
    /// # Errors
    /// As [`SweepArgs::config`].
    pub fn sweep_config(&self) -> Result<Option<SweepConfig>, CliError> {
        self.sweep.config(&self.request_rate)
    }
}

#[cfg(test)]
mod tests {
    use super::super::replay::ReplayArgs;
    use crate::replay::sweep::SweepPlan;
    use crate::replay::RequestRate;

    fn sweep(flags: &str) -> Result<Option<crate::replay::sweep::SweepConfig>, String> {
        let argv = std::iter::once("benchkit replay".to_string()).chain(flags.split_whitespace().map(String::from));
        ReplayArgs::try_parse_argv(argv).unwrap().sweep_config().map_err(|e| e.to_string())
    }

    #[test]
    fn one_rate_is_one_run_and_a_list_is_a_sweep() {
        assert_eq!(sweep("--request-rate 4").unwrap(), None);
        assert_eq!(sweep("").unwrap(), None);
        let c = sweep("--request-rate 1,2.5,inf").unwrap().unwrap();
        let rates = vec![RequestRate::PerSecond(1.0), RequestRate::PerSecond(2.5), RequestRate::INF];
        assert_eq!(c.plan, SweepPlan::Rates { rates });
        let c = sweep("--request-rate 3 --slo ttft:p99:1s").unwrap().unwrap();
        assert_eq!(c.slo.unwrap().objectives[0].threshold_ms, 1000.0);
        assert!(sweep("--request-rate 1,x").unwrap_err().contains("request rate"));
    }

    #[test]
    fn modes_take_their_parameters() {
        match sweep("--sweep saturation --sweep-start 2 --sweep-factor 1.5 --saturation-gain 0.1")
            .unwrap()
            .unwrap()
            .plan
        {
            SweepPlan::Saturation(s) => assert_eq!((s.start, s.factor, s.min_gain, s.max_steps), (2.0, 1.5, 0.1, 8)),
            other => panic!("{other:?}"),
        }
        let flags = "--slo ttft:p99:500ms --search max-rate --search-min 0.5 --search-max 16 --search-tolerance 0.2";
        match sweep(flags).unwrap().unwrap().plan {
            SweepPlan::MaxRate(s) => assert_eq!((s.min, s.max, s.tolerance, s.factor), (0.5, 16.0, 0.2, 2.0)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn contradictions_and_bad_values_name_the_flag() {
        for (flags, flag) in [
            ("--sweep up", "--sweep"),
            ("--search min-rate --slo ttft:p99:1s", "--search"),
            ("--search max-rate", "--slo"),
            ("--sweep saturation --search max-rate --slo ttft:p99:1s", "--search"),
            ("--request-rate 1,2 --sweep saturation", "--request-rate"),
            ("--slo ttft:p99:1", "--slo"),
            ("--sweep saturation --sweep-factor 1", "factor"),
            ("--slo ttft:p99:1s --search max-rate --search-min 8 --search-max 4", "min < max"),
        ] {
            let e = sweep(flags).unwrap_err();
            assert!(e.contains(flag), "{flags}: {e}");
        }
    }
}
