//! The exception hierarchy: `BenchkitError`, one subclass per area of the library. Each
//! instance carries the Rust error's fields as attributes (`kind`, the variant's name, and
//! the variant's own fields such as `path` or `param`), not only its message.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;

pyo3::create_exception!(benchkit, BenchkitError, PyException, "Base of every benchkit error.");
pyo3::create_exception!(benchkit, ModelError, BenchkitError, "A model file is missing, corrupt or refused.");
pyo3::create_exception!(benchkit, ContextError, BenchkitError, "A llama.cpp context could not be created.");
pyo3::create_exception!(benchkit, BenchError, BenchkitError, "A pp/tg benchmark could not run.");
pyo3::create_exception!(benchkit, ParamError, BenchError, "A benchmark parameter is invalid.");
pyo3::create_exception!(benchkit, PerplexityError, BenchkitError, "A perplexity or KL run failed.");
pyo3::create_exception!(benchkit, ReplayError, BenchkitError, "A serving replay failed.");
pyo3::create_exception!(benchkit, PlacementError, BenchkitError, "A placement comparison is invalid.");
pyo3::create_exception!(benchkit, SynthError, BenchkitError, "A synthetic model could not be generated.");
pyo3::create_exception!(
    benchkit,
    WorkerError,
    BenchkitError,
    "A supervised worker could not run, crashed or timed out."
);

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("BenchkitError", py.get_type::<BenchkitError>())?;
    m.add("ModelError", py.get_type::<ModelError>())?;
    m.add("ContextError", py.get_type::<ContextError>())?;
    m.add("BenchError", py.get_type::<BenchError>())?;
    m.add("ParamError", py.get_type::<ParamError>())?;
    m.add("PerplexityError", py.get_type::<PerplexityError>())?;
    m.add("ReplayError", py.get_type::<ReplayError>())?;
    m.add("PlacementError", py.get_type::<PlacementError>())?;
    m.add("SynthError", py.get_type::<SynthError>())?;
    m.add("WorkerError", py.get_type::<WorkerError>())?;
    Ok(())
}

/// The variant's name: what `{:?}` prints before its fields.
fn kind(e: &dyn std::fmt::Debug) -> String {
    format!("{e:?}").chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

/// An exception of type `T` with `message`, `kind` and `fields` as attributes.
fn with_fields<T: pyo3::PyTypeInfo>(
    py: Python<'_>,
    message: String,
    kind: String,
    fields: &[(&str, Option<String>)],
) -> PyErr {
    let err = PyErr::new::<T, _>(message);
    let value = err.value(py);
    let set = || -> PyResult<()> {
        value.setattr("kind", kind)?;
        let all = PyDict::new(py);
        for (k, v) in fields {
            value.setattr(*k, v.clone())?;
            all.set_item(*k, v.clone())?;
        }
        value.setattr("fields", all)
    };
    match set() {
        Ok(()) => err,
        Err(e) => e,
    }
}

pub(crate) fn model(py: Python<'_>, e: &benchkit::ModelError) -> PyErr {
    use benchkit::ModelError as M;
    let shown = |p: &std::path::Path| Some(p.display().to_string());
    // Every ModelError has `path` (None when the variant names no file).
    let (kind_, path, mut fields) = match e {
        M::InvalidFile(g) => (kind(g), gguf_path(g).and_then(shown), Vec::new()),
        M::BadPath(p) | M::LoadFailed { path: p, .. } => (kind(e), shown(p), Vec::new()),
        M::InvalidParam { name, reason } => {
            (kind(e), None, vec![("param", Some(name.to_string())), ("reason", Some(reason.clone()))])
        }
        _ => (kind(e), None, Vec::new()),
    };
    fields.push(("path", path));
    with_fields::<ModelError>(py, e.to_string(), kind_, &fields)
}

/// The path a GGUF error names, when it names one.
fn gguf_path(e: &benchkit::gguf::GgufError) -> Option<&std::path::Path> {
    use benchkit::gguf::GgufError as G;
    match e {
        G::NotFound { path } | G::IsDirectory { path } | G::Io { path, .. } | G::Empty { path } => Some(path),
        _ => None,
    }
}

pub(crate) fn param(py: Python<'_>, e: &benchkit::bench::ParamError) -> PyErr {
    use benchkit::bench::ParamError as P;
    let fields: Vec<(&str, Option<String>)> = match e {
        P::Parse { param, value, reason } => {
            vec![("param", Some(param.clone())), ("value", Some(value.clone())), ("reason", Some(reason.clone()))]
        }
        P::Unavailable { param, value, .. } => {
            vec![("param", Some(param.to_string())), ("value", Some(value.clone())), ("reason", None)]
        }
        _ => vec![("param", None), ("value", None), ("reason", None)],
    };
    with_fields::<ParamError>(py, e.to_string(), kind(e), &fields)
}

/// A parameter the Python layer passed that the library does not know, or cannot read.
pub(crate) fn bad_param(py: Python<'_>, param: &str, value: String, reason: String) -> PyErr {
    with_fields::<ParamError>(
        py,
        format!("invalid value {value} for {param}: {reason}"),
        "Parse".into(),
        &[("param", Some(param.into())), ("value", Some(value)), ("reason", Some(reason))],
    )
}

pub(crate) fn synth(py: Python<'_>, e: &benchkit::synth::SynthError) -> PyErr {
    with_fields::<SynthError>(py, e.to_string(), kind(e), &[])
}

pub(crate) fn backend(py: Python<'_>, e: &benchkit::BackendError) -> PyErr {
    with_fields::<BenchkitError>(py, e.to_string(), kind(e), &[])
}

/// A run that ended in a panic on its thread (a bug: the library does not panic on bad input).
pub(crate) fn panicked(py: Python<'_>, what: &str) -> PyErr {
    with_fields::<BenchkitError>(py, format!("the {what} thread panicked"), "Panic".into(), &[])
}
