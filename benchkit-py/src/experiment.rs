//! `experiment_run` and `experiment_report`: `benchkit experiment run` and `report` through
//! the library. Each treatment's command runs as the `benchkit` executable the caller names;
//! Ctrl-C stops the experiment after the treatment in progress is torn down.

use crate::errors::BenchkitError;
use crate::runner::{self, Msg};
use benchkit::experiment::{self as exp, Experiment, Progress, ReportConfig, RunOptions};
use benchkit::supervise::Cancel;
use pyo3::prelude::*;
use std::path::PathBuf;

pyo3::create_exception!(
    benchkit,
    ExperimentError,
    BenchkitError,
    "An experiment file that cannot be read or is invalid, or an experiment that cannot be run or reported."
);

/// An `ExperimentError` with `kind` (the variant) and `path`, `key` and `line` (each None when
/// it does not apply).
fn error(py: Python<'_>, e: &exp::ExperimentError) -> PyErr {
    use exp::ExperimentError as E;
    if let E::Store(s) = e {
        return crate::errors::store(py, s);
    }
    let kind: String = format!("{e:?}").chars().take_while(|c| c.is_alphanumeric()).collect();
    let shown = |p: &std::path::Path| Some(p.display().to_string());
    let (path, key, line) = match e {
        E::Read { path, .. } | E::Io { path, .. } => (shown(path), None, None),
        E::Toml { path, line, .. } => (shown(path), None, Some(*line)),
        E::Invalid { path, key, .. } => (shown(path), Some(key.clone()), None),
        _ => (None, None, None),
    };
    let err = ExperimentError::new_err(e.to_string());
    let value = err.value(py);
    let set = || -> PyResult<()> {
        value.setattr("kind", kind)?;
        value.setattr("path", path)?;
        value.setattr("key", key)?;
        value.setattr("line", line)
    };
    match set() {
        Ok(()) => err,
        Err(e) => e,
    }
}

/// Runs the experiment `file`, storing into `store`, each command as `exe`. Progress events
/// (`{"event": "starting", "index", "total", "plan"}`, `{"event": "done", ..., "outcome"}`) go
/// to `progress`. Returns (each treatment's outcome as JSON, the summary as JSON).
#[pyfunction]
#[pyo3(signature = (file, store, exe, log_dir=None, progress=None))]
pub(crate) fn experiment_run(
    py: Python<'_>,
    file: PathBuf,
    store: String,
    exe: PathBuf,
    log_dir: Option<PathBuf>,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<(Vec<String>, String)> {
    let x = py.detach(|| Experiment::load(&file)).map_err(|e| error(py, &e))?;
    let cancel = Cancel::new();
    let opts = RunOptions {
        exe,
        store,
        log_dir: log_dir.unwrap_or_else(|| std::env::temp_dir().join(format!("benchkit-experiment-{}", x.name))),
        cancel: cancel.clone(),
    };
    runner::run(
        py,
        "experiment",
        cancel,
        progress,
        move |tx| {
            let summary = x.run(&opts, |p| {
                let event = match p {
                    Progress::Starting { index, total, plan } => {
                        serde_json::json!({"event": "starting", "index": index, "total": total, "plan": plan})
                    }
                    Progress::Done { index, total, outcome } => {
                        if let Ok(json) = serde_json::to_string(outcome) {
                            let _ = tx.send(Msg::Item(json));
                        }
                        serde_json::json!({"event": "done", "index": index, "total": total, "outcome": outcome})
                    }
                    _ => return,
                };
                let _ = tx.send(Msg::Progress(event.to_string()));
            })?;
            Ok(serde_json::to_string(&summary).unwrap_or_default())
        },
        |py, e| error(py, &e),
    )
}

/// The report of experiment `name` in `store`, as JSON: `report` (the library's), `markdown`
/// and `csv`.
#[pyfunction]
#[pyo3(signature = (name, store, baseline=None, metrics=Vec::new(), threshold=0.02, alpha=0.05, seed=0x5eed))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn experiment_report(
    py: Python<'_>,
    name: String,
    store: String,
    baseline: Option<String>,
    metrics: Vec<String>,
    threshold: f64,
    alpha: f64,
    seed: u64,
) -> PyResult<String> {
    let config = ReportConfig { baseline, metrics, threshold, alpha, seed, ..ReportConfig::new(name) };
    let opened = py.detach(|| benchkit::store::Store::open_read_only(&store));
    let store = opened.map_err(|e| crate::errors::store(py, &e))?;
    let report = py.detach(|| exp::report(&store, &config)).map_err(|e| error(py, &e))?;
    let out = serde_json::json!({
        "report": report,
        "markdown": exp::to_markdown(&report),
        "csv": exp::to_csv(&report),
    });
    Ok(out.to_string())
}

/// Adds `ExperimentError` to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ExperimentError", m.py().get_type::<ExperimentError>())
}
