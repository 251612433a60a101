//! A long run on a Rust thread, driven from the calling thread: the GIL is released while it
//! waits; progress events are handed to the Python callback on the calling thread (so tqdm
//! and ipywidgets work); Ctrl-C (`check_signals`, which only works on the main thread, hence
//! this split) cancels the run, and the items produced so far ride on the exception as
//! `partial`.

use benchkit::supervise::Cancel;
use pyo3::prelude::*;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

/// What the run thread sends: a progress event or a result item, each as JSON.
pub(crate) enum Msg {
    Progress(String),
    Item(String),
}

/// How often the calling thread looks for Ctrl-C while nothing arrives.
const POLL: Duration = Duration::from_millis(50);

/// Runs `work` on its own thread and returns its items (JSON texts) and its own result once it
/// ends.
///
/// # Errors
/// `work`'s error, converted by `convert` on the calling thread; `KeyboardInterrupt` (with
/// `partial`: the items so far) after Ctrl-C; the callback's own exception (with `partial`);
/// `BenchkitError` if the thread panicked.
pub(crate) fn run<E: Send + 'static>(
    py: Python<'_>,
    what: &str,
    cancel: Cancel,
    progress: Option<Bound<'_, PyAny>>,
    work: impl FnOnce(Sender<Msg>) -> Result<String, E> + Send + 'static,
    convert: impl FnOnce(Python<'_>, E) -> PyErr,
) -> PyResult<(Vec<String>, String)> {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(format!("benchkit-{what}"))
        .spawn(move || work(tx))
        .map_err(|e| pyo3::exceptions::PyOSError::new_err(format!("cannot start the {what} thread: {e}")))?;
    let loads = py.import("json")?.getattr("loads")?;
    let mut items = Vec::new();
    let mut stopped: Option<PyErr> = None;
    let mut rx: Receiver<Msg> = rx;
    loop {
        let (back, msg) = py.detach(move || {
            let m = rx.recv_timeout(POLL);
            (rx, m)
        });
        rx = back;
        match msg {
            Ok(Msg::Item(json)) => items.push(json),
            Ok(Msg::Progress(json)) => {
                if let (Some(cb), None) = (&progress, &stopped) {
                    if let Err(e) = loads.call1((json,)).and_then(|event| cb.call1((event,))) {
                        cancel.cancel();
                        stopped = Some(e);
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if stopped.is_none() {
            if let Err(e) = py.check_signals() {
                cancel.cancel();
                stopped = Some(e);
            }
        }
    }
    let outcome = py.detach(move || handle.join());
    if let Some(e) = stopped {
        e.value(py).setattr("partial", items)?;
        return Err(e);
    }
    match outcome {
        Ok(Ok(last)) => Ok((items, last)),
        Ok(Err(e)) => Err(convert(py, e)),
        Err(_) => Err(crate::errors::panicked(py, what)),
    }
}
