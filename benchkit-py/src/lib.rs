//! `benchkit._native`: the library's configuration -> run -> result calls, for the pure-Python
//! package `benchkit` around it. Configurations arrive as JSON objects of the library's own
//! serde names and results leave as the library's JSON, so that nothing is defined twice;
//! long runs go on a Rust thread while the calling thread, GIL released, relays progress and
//! watches for Ctrl-C.

mod bench;
mod errors;
mod experiment;
mod perplexity;
mod placement;
mod replay;
mod runner;
mod store;
mod synth;

use pyo3::prelude::*;

/// Runs the supervised job on stdin and exits when this process was started as a benchkit
/// worker (`python -m benchkit._worker`); raises otherwise.
#[pyfunction]
fn worker_main() -> PyResult<()> {
    benchkit::supervise::worker_entry();
    Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
        "not a benchkit worker: {}=1 is set by the supervisor that starts one",
        benchkit::supervise::WORKER_ENV
    )))
}

#[pymodule]
mod _native {
    #[pymodule_export]
    use super::bench::bench;
    #[pymodule_export]
    use super::experiment::{experiment_report, experiment_run};
    #[pymodule_export]
    use super::perplexity::perplexity;
    #[pymodule_export]
    use super::placement::placement;
    #[pymodule_export]
    use super::replay::replay;
    #[pymodule_export]
    use super::replay::replay_merge;
    #[pymodule_export]
    use super::replay::replay_sweep;
    #[pymodule_export]
    use super::store::Store;
    #[pymodule_export]
    use super::synth::synth_model;
    #[pymodule_export]
    use super::worker_main;
    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        super::experiment::register(m)?;
        super::errors::register(m)
    }
}
