//! `placement`: `benchkit placement`'s flags (arms, rounds, seed, the workload after `--`),
//! parsed by the library's own parser; each trial streams back as it ends, then the report.

use crate::errors;
use crate::runner::{self, Msg};
use crate::store::{raise_failed, store_run, Failed};
use benchkit::cli::placement::PlacementArgs;
use benchkit::supervise::{Cancel, WorkerCommand};
use benchkit::Backend;
use pyo3::prelude::*;

/// Runs a placement comparison with `flags`; the workload's workers run `worker`. Returns
/// (trials as JSON, report as JSON).
#[pyfunction]
#[pyo3(signature = (flags, worker, progress=None))]
pub(crate) fn placement(
    py: Python<'_>,
    flags: Vec<String>,
    worker: Vec<String>,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<(Vec<String>, String)> {
    let argv = std::iter::once("benchkit placement".to_string()).chain(flags);
    let args = PlacementArgs::try_parse_argv(argv).map_err(|e| errors::clap(py, &e))?;
    let backend = Backend::init().map_err(|e| errors::backend(py, &e))?;
    let (mut config, _) = py.detach(|| args.config(&backend)).map_err(|e| errors::cli(py, &e))?;
    // `--store`/`--label` (or BENCHKIT_STORE), as the command stores each arm's records.
    let stored = py.detach(|| args.store.writer()).map_err(|e| errors::store(py, &e))?;
    let failed = Failed::default();
    let store_failed = failed.clone();
    let cancel = Cancel::new();
    if let Some((program, rest)) = worker.split_first() {
        config.workload.supervise_with(|t| t.worker = WorkerCommand::program(program).with_args(rest.iter().cloned()));
    }
    config.cancel = Some(cancel.clone());
    let (items, report) = runner::run(
        py,
        "placement",
        cancel,
        progress,
        move |tx| {
            let report = config.run(&backend, |trial| {
                if let Ok(json) = serde_json::to_string(trial) {
                    let _ = tx.send(Msg::Item(json));
                }
            })?;
            store_run(stored, &store_failed, |w| w.placement(&report));
            Ok(serde_json::to_string(&report).unwrap_or_default())
        },
        |py, e| errors::placement(py, &e),
    )?;
    raise_failed(py, &failed, || Ok((items.clone(), report.clone()).into_pyobject(py)?.into_any()))?;
    Ok((items, report))
}
