//! `replay`: `benchkit replay`'s flags, parsed by the library's own parser; each request's
//! record streams back as it finishes, then the vLLM-compatible result.

use crate::bench::supervised;
use crate::errors;
use crate::runner::{self, Msg};
use crate::store::{raise_failed, store_run, Failed};
use benchkit::cli::replay::ReplayArgs;
use benchkit::cli::CliError;
use benchkit::supervise::Cancel;
use benchkit::Backend;
use pyo3::prelude::*;

/// Runs a replay with `flags` (`benchkit replay`'s); an in-process engine without `-m` runs
/// the embedded default model. Returns (records as JSON, result as JSON).
#[pyfunction]
#[pyo3(signature = (flags, worker, progress=None))]
pub(crate) fn replay(
    py: Python<'_>,
    flags: Vec<String>,
    worker: Vec<String>,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<(Vec<String>, String)> {
    let argv = std::iter::once("benchkit replay".to_string()).chain(flags);
    let args = ReplayArgs::try_parse_argv(argv).map_err(|e| errors::clap(py, &e))?;
    let backend = Backend::init().map_err(|e| errors::backend(py, &e))?;
    let mut config = py
        .detach(|| args.config(|| benchkit::synth::default_model(&backend).map_err(|e| CliError::invalid("-m", e))))
        .map_err(|e| errors::cli(py, &e))?;
    // `--store`/`--label` (or BENCHKIT_STORE), as the command stores its result, with every
    // request's latencies as samples.
    let stored = py.detach(|| args.store.writer()).map_err(|e| errors::store(py, &e))?;
    let failed = Failed::default();
    let store_failed = failed.clone();
    let cancel = Cancel::new();
    config.isolation = supervised(config.isolation, &worker, &cancel);
    config.cancel = Some(cancel.clone());
    let keep = stored.is_some();
    let (items, summary) = runner::run(
        py,
        "replay",
        cancel,
        progress,
        move |tx| {
            let mut requests = Vec::new();
            let result = config.run(&backend, |record| {
                if keep {
                    requests.push(record.clone());
                }
                if let Ok(json) = serde_json::to_string(record) {
                    let _ = tx.send(Msg::Item(json));
                }
            })?;
            store_run(stored, &store_failed, |w| w.replay(&result, &requests));
            Ok(serde_json::to_string(&result).unwrap_or_default())
        },
        |py, e| errors::replay(py, &e),
    )?;
    raise_failed(py, &failed, || Ok((items.clone(), summary.clone()).into_pyobject(py)?.into_any()))?;
    Ok((items, summary))
}
