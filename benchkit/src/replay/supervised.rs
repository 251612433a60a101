//! An in-process replay (llama.cpp in the measuring process) run in a supervised worker: the
//! engine's crash ends the run with a crash report, never the caller, and every request
//! finished before it has reached the caller.

use super::inproc::{InprocConfig, InprocTarget};
use super::{drive, DriveConfig, DriveStats, Request, RequestRecord, Target};
use crate::supervise::{run_single_measured, Emitter, Event, Job, Phase, TrialConfig, TrialError};
use crate::Backend;
use std::sync::Arc;

/// Replays `requests` against an [`InprocTarget`] built from `config`, in a worker process.
/// `on_record` gets each request's record as the worker finishes it (aggregate them as with
/// [`drive`]); the result is the driver's statistics.
///
/// # Errors
/// [`TrialError`]: the worker could not start, crashed (records delivered so far stay
/// delivered), ran past `opts.timeout` (the whole replay's limit), or the engine could not
/// start (`Failed`, with [`InprocError`](super::inproc::InprocError)'s message).
pub fn replay_inproc_supervised(
    config: &InprocConfig,
    requests: Vec<Request>,
    options: &DriveConfig,
    opts: &TrialConfig,
    on_record: impl FnMut(RequestRecord),
) -> Result<DriveStats, TrialError> {
    replay_inproc_measured(config, requests, options, opts, on_record).map(|(stats, _)| stats)
}

/// [`replay_inproc_supervised`], with what was sampled of the worker from the moment its
/// engine was up ([`TrialConfig::telemetry`]).
///
/// # Errors
/// As [`replay_inproc_supervised`].
pub fn replay_inproc_measured(
    config: &InprocConfig,
    requests: Vec<Request>,
    options: &DriveConfig,
    opts: &TrialConfig,
    mut on_record: impl FnMut(RequestRecord),
) -> Result<(DriveStats, crate::telemetry::Telemetry), TrialError> {
    let job = Job::Replay { config: config.clone(), requests, options: options.clone() };
    run_single_measured(&job, opts, |event| {
        if let Event::Progress { value, .. } = event {
            match serde_json::from_value::<RequestRecord>(value.clone()) {
                Ok(r) => on_record(r),
                Err(e) => tracing::warn!(error = %e, "unreadable request record from the replay worker"),
            }
        }
    })
}

/// The worker side of [`Job::Replay`].
pub(crate) fn run_job(
    config: InprocConfig,
    requests: Vec<Request>,
    options: DriveConfig,
    emit: &Emitter,
) -> Result<(), String> {
    emit.phase(0, Phase::Start);
    let backend = Backend::init().map_err(|e| e.to_string())?;
    emit.phase(0, Phase::Load);
    let target: Arc<dyn Target> = Arc::new(InprocTarget::start(&backend, config).map_err(|e| e.to_string())?);
    // The driver's own threads, as the replay front end runs it (the engine has its own).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the replay runtime: {e}"))?;
    // The engine and the driver's threads are up: the supervisor can look at them now.
    emit.phase(0, Phase::Warmup);
    let stats = rt.block_on(drive(target, requests, &options, |rec| emit.progress(0, &rec)));
    emit.output(0, &stats);
    emit.phase(0, Phase::Finished);
    Ok(())
}
