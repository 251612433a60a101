//! One supervised trial with one typed output: a perplexity run, an in-process replay.

use super::protocol::Job;
use super::trial::{CrashReport, Ending, Event, Trial, TrialConfig};
use super::SuperviseError;
use crate::telemetry::Telemetry;

/// Why a single supervised trial produced no output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrialError {
    /// The worker could not be run at all.
    #[error(transparent)]
    Supervise(#[from] SuperviseError),
    /// The worker died (signal, abort, OOM kill).
    #[error("{}", .0.describe())]
    Crashed(Box<CrashReport>),
    /// It ran past the timeout and was killed.
    #[error("{}", .0.describe())]
    TimedOut(Box<CrashReport>),
    /// The run was cancelled ([`TrialConfig::cancel`]) and the worker killed.
    #[error("cancelled; worker killed")]
    Cancelled(Box<CrashReport>),
    /// The work itself failed with a typed error in the worker (a missing file, a bad
    /// parameter); its message.
    #[error("{0}")]
    Failed(String),
    /// The worker's output did not parse as the expected type.
    #[error("unreadable output from the worker: {0}")]
    Output(serde_json::Error),
}

impl TrialError {
    /// The crash report, for `Crashed`, `TimedOut` and `Cancelled`.
    pub fn crash(&self) -> Option<&CrashReport> {
        match self {
            TrialError::Crashed(r) | TrialError::TimedOut(r) | TrialError::Cancelled(r) => Some(r),
            _ => None,
        }
    }
}

/// Runs `job` (one trial, index 0) in a worker and returns its output; `on_event` sees every
/// phase and progress event as it arrives.
///
/// # Errors
/// [`TrialError`]: the worker could not start, crashed, timed out, or reported the job's error.
pub fn run_single<T: serde::de::DeserializeOwned>(
    job: &Job,
    opts: &TrialConfig,
    on_event: impl FnMut(&Event),
) -> Result<T, TrialError> {
    run_single_measured(job, opts, on_event).map(|(t, _)| t)
}

/// [`run_single`], with what was sampled of the worker while the trial ran
/// ([`TrialConfig::telemetry`]).
///
/// # Errors
/// As [`run_single`].
pub fn run_single_measured<T: serde::de::DeserializeOwned>(
    job: &Job,
    opts: &TrialConfig,
    mut on_event: impl FnMut(&Event),
) -> Result<(T, Telemetry), TrialError> {
    let mut trial = Trial::spawn(job, opts)?;
    let mut output = None;
    loop {
        match trial.next_event() {
            Event::Output { value, telemetry, .. } => output = Some((value, telemetry)),
            Event::End(Ending::Done) => break,
            Event::End(Ending::TimedOut { report, .. }) => return Err(TrialError::TimedOut(Box::new(report))),
            Event::End(Ending::Cancelled { report, .. }) => return Err(TrialError::Cancelled(Box::new(report))),
            Event::End(Ending::Crashed { error: Some(e), report, .. }) if report.signal.is_none() => {
                return Err(TrialError::Failed(e))
            }
            Event::End(Ending::Crashed { report, .. }) => return Err(TrialError::Crashed(Box::new(report))),
            event => on_event(&event),
        }
    }
    let (value, telemetry) =
        output.ok_or_else(|| TrialError::Failed("the worker finished without an output".into()))?;
    Ok((serde_json::from_value(value).map_err(TrialError::Output)?, *telemetry))
}
