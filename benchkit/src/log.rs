//! Routes llama.cpp's and ggml's log output into `tracing` (target `llama.cpp`).
//!
//! Quiet by default: llama.cpp's chatty INFO lines become `debug`, DEBUG becomes `trace`, so
//! nothing shows unless the application installs a subscriber that asks for it.

use llama_sys as sys;
use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    // llama.cpp logs lines in pieces (GGML_LOG_LEVEL_CONT); assemble them per thread.
    static PENDING: RefCell<(sys::ggml_log_level, String)> = const { RefCell::new((0, String::new())) };
}

/// Set in supervised worker processes: every llama.cpp line also goes to stderr, where the
/// supervisor keeps the last lines for a crash report.
static TO_STDERR: AtomicBool = AtomicBool::new(false);

pub(crate) fn also_to_stderr() {
    TO_STDERR.store(true, Ordering::Relaxed);
}

fn emit(level: sys::ggml_log_level, line: &str) {
    let line = line.trim_end();
    if line.is_empty() {
        return;
    }
    if TO_STDERR.load(Ordering::Relaxed) {
        eprintln!("{line}");
    }
    match level {
        sys::GGML_LOG_LEVEL_ERROR => tracing::error!(target: "llama.cpp", "{line}"),
        sys::GGML_LOG_LEVEL_WARN => tracing::warn!(target: "llama.cpp", "{line}"),
        sys::GGML_LOG_LEVEL_DEBUG => tracing::trace!(target: "llama.cpp", "{line}"),
        _ => tracing::debug!(target: "llama.cpp", "{line}"),
    }
}

unsafe extern "C" fn callback(level: sys::ggml_log_level, text: *const c_char, _user: *mut c_void) {
    if text.is_null() {
        return;
    }
    // SAFETY: llama.cpp passes a NUL-terminated string valid for the duration of the call.
    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    // Never unwind into C.
    let _ = std::panic::catch_unwind(|| {
        PENDING.with(|p| {
            let mut p = p.borrow_mut();
            if level != sys::GGML_LOG_LEVEL_CONT {
                p.0 = level;
            }
            p.1.push_str(&text);
            while let Some(pos) = p.1.find('\n') {
                let line: String = p.1.drain(..=pos).collect();
                emit(p.0, &line);
            }
        });
    });
}

/// Installs the callback for llama.cpp and ggml. Idempotent.
pub(crate) fn install() {
    // SAFETY: the callback is a 'static function that never unwinds; user data is unused.
    unsafe {
        sys::llama_log_set(Some(callback), std::ptr::null_mut());
        sys::ggml_log_set(Some(callback), std::ptr::null_mut());
    }
}
