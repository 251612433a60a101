//! `perplexity`: llama-perplexity's flags, parsed by the library's own parser (the
//! `benchkit perplexity` command's), so the Python call and the command take the same
//! configuration; the result is the library's JSON.

use crate::bench::supervised;
use crate::errors;
use crate::runner::{self, Msg};
use crate::store::{raise_failed, store_run, Failed};
use benchkit::cli::perplexity::PerplexityArgs;
use benchkit::perplexity::PerplexityOutput;
use benchkit::supervise::Cancel;
use benchkit::Backend;
use pyo3::prelude::*;

/// Runs perplexity or KL-divergence with `flags` (llama-perplexity's, without the program
/// name); each scored chunk goes to `progress`; the worker runs `worker`. Returns the result
/// as JSON.
#[pyfunction]
#[pyo3(signature = (flags, worker, progress=None))]
pub(crate) fn perplexity(
    py: Python<'_>,
    flags: Vec<String>,
    worker: Vec<String>,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<String> {
    let argv = std::iter::once("benchkit perplexity".to_string()).chain(flags);
    let args = PerplexityArgs::try_parse_argv(argv).map_err(|e| errors::clap(py, &e))?;
    let (job, _) = args.job().map_err(|e| errors::cli(py, &e))?;
    job.check_model().map_err(|e| errors::model(py, &e))?;
    let cancel = Cancel::new();
    let isolation = supervised(args.isolation().map_err(|e| errors::cli(py, &e))?, &worker, &cancel);
    let backend = Backend::init().map_err(|e| errors::backend(py, &e))?;
    // `--store`/`--label` (or BENCHKIT_STORE), as the command stores its result.
    let stored = py.detach(|| args.store.writer()).map_err(|e| errors::store(py, &e))?;
    let failed = Failed::default();
    let store_failed = failed.clone();
    let (_, result) = runner::run(
        py,
        "perplexity",
        cancel,
        progress,
        move |tx| {
            let output = job.execute(&backend, &isolation, |p| {
                if let Ok(json) = serde_json::to_string(p) {
                    let _ = tx.send(Msg::Progress(json));
                }
            })?;
            store_run(stored, &store_failed, |w| w.perplexity(&output));
            Ok(match &output {
                PerplexityOutput::Perplexity(r) => serde_json::to_string(r),
                PerplexityOutput::KlDivergence(r) => serde_json::to_string(r),
                _ => Ok(String::new()),
            }
            .unwrap_or_default())
        },
        |py, e| errors::perplexity(py, &e),
    )?;
    raise_failed(py, &failed, || Ok(result.clone().into_pyobject(py)?.into_any()))?;
    Ok(result)
}
