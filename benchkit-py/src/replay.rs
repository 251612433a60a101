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

/// Merges the shards of a replay (`benchkit replay merge`): `paths` are shard directories or
/// files. Returns (every shard's records as JSON, on the shared clock; the merged result as
/// JSON).
#[pyfunction]
pub(crate) fn replay_merge(py: Python<'_>, paths: Vec<std::path::PathBuf>) -> PyResult<(Vec<String>, String)> {
    use benchkit::replay::shard;
    let merged = py.detach(|| -> Result<_, shard::ShardError> {
        let shards = shard::shard_files(&paths)?
            .into_iter()
            .map(|p| shard::read_shard(&p).map(|f| (p, f)))
            .collect::<Result<Vec<_>, _>>()?;
        let records = shard::merged_records(&shards)?;
        let result = shard::merge_files(shards)?;
        let records = records.iter().filter_map(|r| serde_json::to_string(r).ok()).collect();
        Ok((records, serde_json::to_string(&result).unwrap_or_default()))
    });
    merged.map_err(|e| errors::replay(py, &benchkit::replay::ReplayError::from(e)))
}

/// Runs a rate sweep with `flags` (`benchkit replay`'s, with `--request-rate` as a list,
/// `--sweep saturation` or `--slo ... --search max-rate`; one rate and no sweep flag is a
/// one-point sweep). Each point streams back as its run ends; returns (points as JSON, the
/// sweep as JSON). `--store` stores every run in one store run, as the command does.
#[pyfunction]
#[pyo3(signature = (flags, worker, progress=None))]
pub(crate) fn replay_sweep(
    py: Python<'_>,
    flags: Vec<String>,
    worker: Vec<String>,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<(Vec<String>, String)> {
    use benchkit::replay::sweep::{run_sweep, SweepConfig, SweepError, SweepObserver, SweepPlan, SweepPoint};
    use benchkit::replay::RequestRecord;

    struct Stream {
        tx: std::sync::mpsc::Sender<Msg>,
        store: Option<benchkit::store::RunWriter>,
        failed: Failed,
        requests: Vec<RequestRecord>,
    }
    impl SweepObserver for Stream {
        fn start(&mut self, _rate: benchkit::replay::RequestRate) {
            self.requests.clear();
        }
        fn record(&mut self, record: &RequestRecord) {
            if self.store.is_some() {
                self.requests.push(record.clone());
            }
        }
        fn point(&mut self, point: &SweepPoint) {
            if let Some(w) = &mut self.store {
                if let Err(e) = w.replay(&point.result, &self.requests) {
                    *self.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                    self.store = None;
                }
            }
            if let Ok(json) = serde_json::to_string(point) {
                let _ = self.tx.send(Msg::Item(json));
            }
        }
    }

    let argv = std::iter::once("benchkit replay".to_string()).chain(flags);
    let args = ReplayArgs::try_parse_argv(argv).map_err(|e| errors::clap(py, &e))?;
    let sweep = match args.sweep_config().map_err(|e| errors::cli(py, &e))? {
        Some(s) => s,
        None => {
            let rates = benchkit::cli::replay_sweep::rates(&args.request_rate).map_err(|e| errors::cli(py, &e))?;
            SweepConfig { plan: SweepPlan::Rates { rates }, slo: None }
        }
    };
    let backend = Backend::init().map_err(|e| errors::backend(py, &e))?;
    let mut config = py
        .detach(|| args.config(|| benchkit::synth::default_model(&backend).map_err(|e| CliError::invalid("-m", e))))
        .map_err(|e| errors::cli(py, &e))?;
    let store = py.detach(|| args.store.writer()).map_err(|e| errors::store(py, &e))?;
    let failed = Failed::default();
    let store_failed = failed.clone();
    let cancel = Cancel::new();
    config.isolation = supervised(config.isolation, &worker, &cancel);
    config.cancel = Some(cancel.clone());
    let (items, summary) = runner::run(
        py,
        "replay-sweep",
        cancel,
        progress,
        move |tx| {
            let mut stream = Stream { tx, store, failed: store_failed.clone(), requests: Vec::new() };
            let result = run_sweep(config, &sweep, &backend, &mut stream)?;
            store_run(stream.store.take(), &store_failed, |_| Ok(()));
            Ok(serde_json::to_string(&result).unwrap_or_default())
        },
        |py, e: SweepError| match e {
            SweepError::Replay(e) => errors::replay(py, &e),
            e => errors::cli(py, &CliError::invalid("--sweep", e)),
        },
    )?;
    raise_failed(py, &failed, || Ok((items.clone(), summary.clone()).into_pyobject(py)?.into_any()))?;
    Ok((items, summary))
}
