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
    StoreError,
    BenchkitError,
    "The results store could not be opened, read or written, a file not imported, or two selections not compared."
);
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
    m.add("StoreError", py.get_type::<StoreError>())?;
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

/// A command-line style flag the library's parser refused (clap's own message).
pub(crate) fn clap(py: Python<'_>, e: &clap::Error) -> PyErr {
    let message = e.render().to_string();
    let message = message.trim().trim_start_matches("error: ").to_string();
    with_fields::<ParamError>(
        py,
        message,
        format!("{:?}", e.kind()),
        &[("param", None), ("value", None), ("reason", None)],
    )
}

pub(crate) fn cli(py: Python<'_>, e: &benchkit::cli::CliError) -> PyErr {
    use benchkit::cli::CliError as C;
    match e {
        C::Param(p) => param(py, p),
        C::Placement(p) => placement(py, p),
        C::Invalid { flag, reason } => with_fields::<ParamError>(
            py,
            e.to_string(),
            kind(e),
            &[("param", Some(flag.to_string())), ("value", None), ("reason", Some(reason.clone()))],
        ),
        C::Missing { flag, why } => with_fields::<ParamError>(
            py,
            e.to_string(),
            kind(e),
            &[("param", Some(flag.to_string())), ("value", None), ("reason", Some(why.to_string()))],
        ),
        _ => {
            with_fields::<ParamError>(py, e.to_string(), kind(e), &[("param", None), ("value", None), ("reason", None)])
        }
    }
}

/// A worker that could not run, crashed or timed out: its crash report's fields. The work's
/// own failure in the worker (`Failed`: only its message crosses) is the area's error `T`.
fn trial<T: pyo3::PyTypeInfo>(py: Python<'_>, e: &benchkit::supervise::TrialError) -> PyErr {
    use benchkit::supervise::TrialError as Te;
    if let Te::Failed(message) = e {
        return with_fields::<T>(py, message.clone(), kind(e), &[]);
    }
    let crash = e.crash();
    let fields = [
        ("signal", crash.and_then(|c| c.signal.clone())),
        ("exit_code", crash.and_then(|c| c.exit_code).map(|c| c.to_string())),
        ("phase", crash.and_then(|c| c.phase).and_then(|p| serde_json::to_string(&p).ok())),
        ("abort_message", crash.and_then(|c| c.abort_message.clone())),
    ];
    with_fields::<WorkerError>(py, e.to_string(), kind(e), &fields)
}

pub(crate) fn perplexity(py: Python<'_>, e: &benchkit::perplexity::SupervisedPerplexityError) -> PyErr {
    use benchkit::perplexity::{PerplexityError as P, SupervisedPerplexityError as S};
    match e {
        S::Perplexity(P::Model(m)) => model(py, m),
        S::Perplexity(p) => with_fields::<PerplexityError>(py, p.to_string(), kind(p), &[]),
        S::Trial(t) => trial::<PerplexityError>(py, t),
        _ => with_fields::<PerplexityError>(py, e.to_string(), kind(e), &[]),
    }
}

pub(crate) fn replay(py: Python<'_>, e: &benchkit::replay::ReplayError) -> PyErr {
    use benchkit::replay::ReplayError as R;
    match e {
        R::Model(m) => model(py, m),
        R::Trial(t) => trial::<ReplayError>(py, t),
        _ => with_fields::<ReplayError>(py, e.to_string(), kind(e), &[]),
    }
}

pub(crate) fn placement(py: Python<'_>, e: &benchkit::placement::PlacementError) -> PyErr {
    use benchkit::placement::PlacementError as P;
    let fields: Vec<(&str, Option<String>)> = match e {
        P::Arm { arm, reason } => vec![("arm", Some(arm.clone())), ("reason", Some(reason.clone()))],
        P::Invalid { what, value, reason } => {
            vec![
                ("arm", None),
                ("param", Some(what.clone())),
                ("value", Some(value.clone())),
                ("reason", Some(reason.clone())),
            ]
        }
        _ => vec![("arm", None)],
    };
    with_fields::<PlacementError>(py, e.to_string(), kind(e), &fields)
}

/// A `StoreError` of `kind`: every one has `store` (the path or redacted URL, for a store that
/// cannot be opened), `path` (the imported file), `line` (where that file does not parse) and
/// `side` (`baseline` or `candidate`, for a side that selects nothing), each None when it does
/// not apply.
fn store_error(py: Python<'_>, message: String, kind: String, fields: [Option<String>; 4]) -> PyErr {
    let [store, path, line, side] = fields;
    with_fields::<StoreError>(py, message, kind, &[("store", store), ("path", path), ("line", line), ("side", side)])
}

/// A store that cannot be opened, read or written. A malformed filter is a `ParamError`
/// (`param` "filter"), as the commands' bad `--filter` is.
pub(crate) fn store(py: Python<'_>, e: &benchkit::store::StoreError) -> PyErr {
    use benchkit::store::StoreError as S;
    let store = match e {
        S::Filter { filter, reason } => {
            return with_fields::<ParamError>(
                py,
                e.to_string(),
                kind(e),
                &[("param", Some("filter".into())), ("value", Some(filter.clone())), ("reason", Some(reason.clone()))],
            )
        }
        S::Open { store, .. } | S::NoPostgres(store) => Some(store.clone()),
        S::NotFound(p) => Some(p.display().to_string()),
        _ => None,
    };
    store_error(py, e.to_string(), kind(e), [store, None, None, None])
}

/// A file that could not be imported.
pub(crate) fn import(py: Python<'_>, e: &benchkit::store::import::ImportError) -> PyErr {
    use benchkit::store::import::ImportError as I;
    let shown = |p: &std::path::Path| Some(p.display().to_string());
    let (path, line) = match e {
        I::Store(s) => return store(py, s),
        I::Io { path, .. } | I::UnknownFormat(path) => (shown(path), None),
        I::Parse { path, line, .. } => (shown(path), Some(line.to_string())),
        _ => (None, None),
    };
    store_error(py, e.to_string(), kind(e), [None, path, line, None])
}

/// Selections that cannot be compared.
pub(crate) fn compare(py: Python<'_>, e: &benchkit::store::compare::CompareError) -> PyErr {
    use benchkit::store::compare::CompareError as C;
    let side = match e {
        C::Empty { side, .. } => Some((*side).to_string()),
        _ => None,
    };
    store_error(py, e.to_string(), kind(e), [None, None, None, side])
}
