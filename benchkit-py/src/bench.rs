//! `bench`: a pp/tg sweep from a JSON configuration of the library's own field names.

use crate::errors;
use crate::runner::{self, Msg};
use crate::store::{raise_failed, store_run, Failed};
use benchkit::bench::{BenchConfig, Grid, ParamError, RunConfig};
use benchkit::cli::store::StoreOut;
use benchkit::supervise::{Cancel, Isolation, TrialConfig, WorkerCommand};
use benchkit::telemetry::TelemetryConfig;
use benchkit::Backend;
use pyo3::prelude::*;
use serde_json::{Map, Value};
use std::time::Duration;

/// Overlays `overrides` on `base`'s fields, refusing a name the struct does not have.
pub(crate) fn overlay<T: serde::Serialize + serde::de::DeserializeOwned>(
    py: Python<'_>,
    base: &T,
    overrides: Option<&Value>,
    what: &str,
) -> PyResult<T> {
    let mut fields = match serde_json::to_value(base) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let base_fields = fields.clone();
    if let Some(o) = overrides {
        let Value::Object(o) = o else {
            return Err(errors::bad_param(py, what, o.to_string(), "expected an object".into()));
        };
        for (k, v) in o {
            if !fields.contains_key(k) {
                let known: Vec<&str> = fields.keys().map(String::as_str).collect();
                return Err(errors::bad_param(
                    py,
                    k,
                    v.to_string(),
                    format!("no such {what} parameter; known: {known:?}"),
                ));
            }
            fields.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(Value::Object(fields)).map_err(|e| {
        // Name the parameter that does not read: the first override that fails alone.
        let culprit = overrides.and_then(Value::as_object).and_then(|o| {
            o.iter().find(|(k, v)| {
                let mut one = base_fields.clone();
                one.insert((*k).clone(), (*v).clone());
                serde_json::from_value::<T>(Value::Object(one)).is_err()
            })
        });
        match culprit {
            Some((k, v)) => errors::bad_param(py, k, v.to_string(), e.to_string()),
            None => errors::bad_param(py, what, String::new(), e.to_string()),
        }
    })
}

/// Runs a sweep: `config` holds `grid` (Grid fields; no `models`: the embedded default
/// model), `run` (RunConfig fields), `isolate`, `timeout` (s), and `worker` (the worker's
/// argv), `store` and `label` (as `benchkit bench --store --label`: each record is stored as it
/// is produced; `BENCHKIT_STORE` when `store` is absent). Returns each record as JSON, in
/// order.
#[pyfunction]
#[pyo3(signature = (config, progress=None))]
pub(crate) fn bench(py: Python<'_>, config: &str, progress: Option<Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    let c: Value =
        serde_json::from_str(config).map_err(|e| errors::bad_param(py, "config", config.into(), e.to_string()))?;
    let mut grid: Grid = overlay(py, &Grid::default(), c.get("grid"), "bench")?;
    let run: RunConfig = overlay(py, &RunConfig::default(), c.get("run"), "run")?;
    let telemetry: TelemetryConfig = overlay(py, &TelemetryConfig::default(), c.get("telemetry"), "telemetry")?;
    let backend = Backend::init().map_err(|e| errors::backend(py, &e))?;
    if grid.models.is_empty() {
        let m = py.detach(|| benchkit::synth::default_model(&backend)).map_err(|e| errors::synth(py, &e))?;
        grid.models.push(m);
    }
    let isolation = if c.get("isolate").and_then(Value::as_bool).unwrap_or(true) {
        let timeout = match c.get("timeout") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_f64()
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| errors::bad_param(py, "timeout", v.to_string(), "expected seconds > 0".into()))?,
            ),
        };
        let worker = match c.get("worker").and_then(Value::as_array) {
            Some(argv) if !argv.is_empty() => {
                let argv: Vec<String> = argv.iter().filter_map(|a| a.as_str().map(String::from)).collect();
                WorkerCommand::program(&argv[0]).with_args(argv[1..].iter().cloned())
            }
            _ => WorkerCommand::default(),
        };
        Isolation::Worker(TrialConfig { timeout, worker, ..TrialConfig::default() })
    } else {
        Isolation::InProcess
    };
    let text = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
    let out = StoreOut { store: text("store"), label: text("label") };
    let mut stored = py.detach(|| out.writer()).map_err(|e| errors::store(py, &e))?;
    // A store that fails mid-sweep does not stop the measurement; its error is raised after
    // it, with the records as `partial`.
    let failed = Failed::default();
    let store_failed = failed.clone();
    let cancel = Cancel::new();
    let cancelled = cancel.clone();
    let config = BenchConfig { grid, run, isolation, cancel: Some(cancel.clone()), telemetry };
    config.check_models().map_err(|e| errors::model(py, &e))?;
    let (records, _) = runner::run(
        py,
        "bench",
        cancel,
        progress,
        move |tx: std::sync::mpsc::Sender<Msg>| -> Result<String, ParamError> {
            let backend = Backend::init().expect("initialised above");
            let events = tx.clone();
            let sweep = config.run(&backend, move |p| {
                if let Ok(json) = serde_json::to_string(p) {
                    let _ = events.send(Msg::Progress(json));
                }
            })?;
            for record in sweep {
                if let Some(w) = stored.as_mut() {
                    // The first failure is kept for `finish`, which returns it.
                    let _ = w.bench(&record);
                }
                if let Ok(json) = serde_json::to_string(&record) {
                    let _ = tx.send(Msg::Item(json));
                }
            }
            // A cancelled sweep leaves its run `interrupted`, as a killed command's does.
            store_run(stored.filter(|_| !cancelled.is_cancelled()), &store_failed, |_| Ok(()));
            Ok(String::new())
        },
        |py, e| errors::param(py, &e),
    )?;
    raise_failed(py, &failed, || Ok(records.clone().into_pyobject(py)?.into_any()))?;
    Ok(records)
}

/// The supervised worker from Python's `worker` argv (`python -m benchkit._worker`), and the
/// run's cancel flag, in `isolation`.
pub(crate) fn supervised(isolation: Isolation, worker: &[String], cancel: &Cancel) -> Isolation {
    match isolation {
        Isolation::Worker(t) => Isolation::Worker(TrialConfig {
            worker: match worker.split_first() {
                Some((program, args)) => WorkerCommand::program(program).with_args(args.iter().cloned()),
                None => t.worker.clone(),
            },
            cancel: Some(cancel.clone()),
            ..t
        }),
        other => other,
    }
}
