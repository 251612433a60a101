//! The worker side: read a job from stdin, run it, report on a private copy of stdout.

use super::protocol::{unix_ns_now, Job, Phase, WorkerMsg, PROTOCOL_VERSION};
use super::WORKER_ENV;
use std::ffi::{c_char, CStr};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::sync::OnceLock;

/// The worker's channel, reachable from ggml's abort callback.
static EMITTER: OnceLock<Emitter> = OnceLock::new();

/// Runs the job and exits when this process is a benchkit worker (`BENCHKIT_WORKER=1`);
/// returns at once otherwise. Call it first thing in `main` of any program that runs supervised
/// trials with [`WorkerCommand::default`](super::WorkerCommand::default).
pub fn worker_entry() {
    if std::env::var_os(WORKER_ENV).as_deref() != Some(std::ffi::OsStr::new("1")) {
        return;
    }
    std::process::exit(run());
}

/// Sends [`WorkerMsg`]s to the supervisor, one line each.
pub(crate) struct Emitter {
    out: File,
}

impl Emitter {
    pub(crate) fn send(&self, msg: &WorkerMsg) {
        let mut line = serde_json::to_vec(msg).expect("worker messages serialise");
        line.push(b'\n');
        // One write per line, so a line is never interleaved; a supervisor that went away
        // leaves nothing to report to.
        if (&self.out).write_all(&line).is_err() {
            std::process::exit(3);
        }
    }

    #[cfg_attr(not(any(feature = "perplexity", feature = "replay")), allow(dead_code))]
    pub(crate) fn phase(&self, index: usize, phase: Phase) {
        self.send(&WorkerMsg::Phase { index, phase, unix_ns: unix_ns_now() });
    }

    #[cfg_attr(not(any(feature = "perplexity", feature = "replay")), allow(dead_code))]
    pub(crate) fn progress(&self, index: usize, value: &impl serde::Serialize) {
        let value = serde_json::to_value(value).expect("worker progress serialises");
        self.send(&WorkerMsg::Progress { index, value });
    }

    pub(crate) fn output(&self, index: usize, value: &impl serde::Serialize) {
        let value = serde_json::to_value(value).expect("worker outputs serialise");
        self.send(&WorkerMsg::Output { index, value });
    }
}

/// Moves the protocol off fd 1: llama.cpp and ggml print to stdout in places, and a stray line
/// must not corrupt the protocol. Fd 1 then points at stderr, which the supervisor keeps.
fn protocol_channel() -> std::io::Result<File> {
    // SAFETY: duplicates this process's fd 1 into a fresh close-on-exec descriptor.
    let fd = unsafe { libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: points fd 1 at the same file as fd 2; both are open in every worker we spawn.
    if unsafe { libc::dup2(2, 1) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created above and nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// ggml calls this with its message, then `abort()`s: the message reaches the supervisor first.
unsafe extern "C" fn on_abort(message: *const c_char) {
    let _ = std::panic::catch_unwind(|| {
        if message.is_null() {
            return;
        }
        // SAFETY: ggml passes a NUL-terminated string valid for the duration of the call.
        let message = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
        eprintln!("{message}");
        if let Some(emit) = EMITTER.get() {
            let mut line = serde_json::to_vec(&WorkerMsg::Abort { message }).unwrap_or_default();
            line.push(b'\n');
            let _ = (&emit.out).write_all(&line);
        }
    });
}

fn run() -> i32 {
    let out = match protocol_channel() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("benchkit worker: cannot set up the protocol pipe: {e}");
            return 2;
        }
    };
    let emit = EMITTER.get_or_init(|| Emitter { out });
    emit.send(&WorkerMsg::Hello { pid: std::process::id(), protocol: PROTOCOL_VERSION });
    crate::log::also_to_stderr();
    // SAFETY: `on_abort` is a 'static function that never unwinds.
    unsafe { llama_sys::ggml_set_abort_callback(Some(on_abort)) };
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        emit.send(&WorkerMsg::Error { message: format!("cannot read the job: {e}") });
        return 2;
    }
    let job: Job = match serde_json::from_str(&input) {
        Ok(j) => j,
        Err(e) => {
            emit.send(&WorkerMsg::Error { message: format!("unreadable job: {e}") });
            return 2;
        }
    };
    // A job of a capability this build leaves out does not parse: "unreadable job" above.
    #[allow(unreachable_code, unused_variables)]
    let result: Result<(), String> = match job {
        #[cfg(feature = "bench")]
        Job::Bench { points, total, settings } => crate::bench::run_job(points, total, settings, emit),
        #[cfg(feature = "perplexity")]
        Job::Perplexity(job) => crate::perplexity::run_job(&job, emit),
        #[cfg(feature = "replay")]
        Job::Replay { config, requests, options } => crate::replay::run_job(config, requests, options, emit),
    };
    if let Err(message) = result {
        emit.send(&WorkerMsg::Error { message });
        return 2;
    }
    emit.send(&WorkerMsg::Done);
    0
}
