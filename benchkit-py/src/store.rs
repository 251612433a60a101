//! `Store`: the results store (a SQLite file or a `postgres://` URL) as `benchkit compare`,
//! `import` and `export` read it. Runs and records leave as the library's JSON; a comparison's
//! flags are `benchkit compare`'s, parsed by its own parser, so the call and the command
//! compare alike.

use crate::errors;
use benchkit::cli::store::CompareArgs;
use benchkit::store::compare as cmp;
use benchkit::store::import::{self as imp, ImportFormat};
use benchkit::store::{Filter, StoreError};
use pyo3::prelude::*;
use std::path::PathBuf;

/// An open store.
#[pyclass(frozen, name = "Store", module = "benchkit._native")]
pub(crate) struct Store {
    inner: benchkit::store::Store,
}

/// Every `key=value[,key=value...]` text, all of which must hold.
fn filter(filters: &[String]) -> Result<Filter, StoreError> {
    filters.iter().try_fold(Filter::all(), |f, s| Ok(f.and(&Filter::parse(s)?)))
}

fn json<T: serde::Serialize>(py: Python<'_>, v: &T) -> PyResult<String> {
    serde_json::to_string(v).map_err(|e| errors::store(py, &StoreError::Serialize(e.to_string())))
}

#[pymethods]
impl Store {
    /// Opens the store at `spec` (a path or a `postgres://` URL): for writing, creating or
    /// upgrading it; with `read_only`, an existing store as it is.
    #[new]
    #[pyo3(signature = (spec, read_only=false))]
    fn new(py: Python<'_>, spec: String, read_only: bool) -> PyResult<Self> {
        let opened = py.detach(|| {
            if read_only {
                benchkit::store::Store::open_read_only(&spec)
            } else {
                benchkit::store::Store::open(&spec)
            }
        });
        opened.map(|inner| Store { inner }).map_err(|e| errors::store(py, &e))
    }

    /// The path, or the URL without its password.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The database's schema version.
    fn schema_version(&self, py: Python<'_>) -> PyResult<i64> {
        py.detach(|| self.inner.schema_version()).map_err(|e| errors::store(py, &e))
    }

    /// The runs matching every filter's run-level keys, oldest first, as a JSON array.
    fn runs(&self, py: Python<'_>, filters: Vec<String>) -> PyResult<String> {
        let runs = py.detach(|| self.inner.runs(&filter(&filters)?)).map_err(|e| errors::store(py, &e))?;
        json(py, &runs)
    }

    /// The records matching every filter, in run then record order, as a JSON array of entries.
    fn entries(&self, py: Python<'_>, filters: Vec<String>) -> PyResult<String> {
        let entries = py.detach(|| self.inner.entries(&filter(&filters)?)).map_err(|e| errors::store(py, &e))?;
        json(py, &entries)
    }

    /// Compares with `benchkit compare`'s `flags` (`-b`, `-c`, `--by`, `--filter`, `--metric`,
    /// `--threshold`, `--alpha`, `--seed`). Returns a JSON object: `comparison` (the library's),
    /// `markdown`, `csv`, `has_regression`, `has_change`.
    fn compare(&self, py: Python<'_>, flags: Vec<String>) -> PyResult<String> {
        let argv = std::iter::once("benchkit compare".to_string()).chain(flags);
        let args = CompareArgs::try_parse_argv(argv).map_err(|e| errors::clap(py, &e))?;
        let config = args.config().map_err(|e| errors::cli(py, &e))?;
        let only = args.filter().map_err(|e| errors::cli(py, &e))?;
        let entries = py.detach(|| self.inner.entries(&only)).map_err(|e| errors::store(py, &e))?;
        let c = py.detach(|| cmp::compare(&entries, &config)).map_err(|e| errors::compare(py, &e))?;
        let out = serde_json::json!({
            "comparison": c,
            "markdown": cmp::to_markdown(&c),
            "csv": cmp::to_csv(&c),
            "has_regression": c.has_regression(),
            "has_change": c.has_change(),
        });
        json(py, &out)
    }

    /// Imports a file as `benchkit import` does (`format`: `auto`, `llama-bench-json`,
    /// `llama-bench-jsonl`, `llama-bench-csv`, `llama-bench-sql`, `vllm`; `label`: the runs'
    /// label, default the file's name). Returns (the runs created, the records stored).
    #[pyo3(signature = (path, format="auto", label=None))]
    fn import_file(
        &self,
        py: Python<'_>,
        path: PathBuf,
        format: &str,
        label: Option<String>,
    ) -> PyResult<(Vec<i64>, usize)> {
        let format: ImportFormat =
            format.parse().map_err(|reason| errors::bad_param(py, "format", format.into(), reason))?;
        let report = py
            .detach(|| imp::import_file(&self.inner, &path, format, label.as_deref()))
            .map_err(|e| errors::import(py, &e))?;
        Ok((report.runs.iter().map(|r| r.0).collect(), report.records))
    }

    fn __repr__(&self) -> String {
        format!("Store({:?})", self.inner.name())
    }
}

/// Where a run's store failure waits for the calling thread: the measurement goes on (its
/// result is not lost), and the error is raised after it with the result as `partial`.
pub(crate) type Failed = std::sync::Arc<std::sync::Mutex<Option<StoreError>>>;

/// Stores a run's records as `--store` does (`write` stores them), then marks it finished;
/// a failure goes to `failed`.
pub(crate) fn store_run(
    writer: Option<benchkit::store::RunWriter>,
    failed: &Failed,
    write: impl FnOnce(&mut benchkit::store::RunWriter) -> Result<(), StoreError>,
) {
    let Some(mut w) = writer else { return };
    if let Err(e) = write(&mut w).and_then(|()| w.finish(None).map(|_| ())) {
        *failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
    }
}

/// Raises the store failure kept in `failed`, with `partial` (the run's result) on it.
pub(crate) fn raise_failed<'py>(
    py: Python<'py>,
    failed: &Failed,
    partial: impl FnOnce() -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<()> {
    let e = failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    let Some(e) = e else { return Ok(()) };
    let err = errors::store(py, &e);
    err.value(py).setattr("partial", partial()?)?;
    Err(err)
}
