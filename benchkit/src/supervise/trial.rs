//! The supervisor side: one worker process running one job.

use super::protocol::{Job, Phase, WorkerMsg, PROTOCOL_VERSION};
use super::{SuperviseError, WORKER_ENV, WORKER_EXE_ENV};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The program run as a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerCommand {
    /// This executable again, with `BENCHKIT_WORKER=1`; its `main` calls
    /// [`worker_entry`](super::worker_entry) first.
    CurrentExe,
    /// Another program that calls `worker_entry` (the `benchkit-worker` binary,
    /// `python -m benchkit._worker`).
    Program {
        /// The executable.
        program: PathBuf,
        /// Its arguments.
        args: Vec<String>,
    },
}

impl Default for WorkerCommand {
    /// `BENCHKIT_WORKER_EXE` when set, else the current executable.
    fn default() -> Self {
        match std::env::var_os(WORKER_EXE_ENV).filter(|v| !v.is_empty()) {
            Some(p) => WorkerCommand::program(p),
            None => WorkerCommand::CurrentExe,
        }
    }
}

impl WorkerCommand {
    /// A worker executable run without arguments.
    pub fn program(program: impl Into<PathBuf>) -> Self {
        WorkerCommand::Program { program: program.into(), args: Vec::new() }
    }

    /// The same program with arguments.
    pub fn with_args(self, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let program = match self {
            WorkerCommand::CurrentExe => std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into()),
            WorkerCommand::Program { program, .. } => program,
        };
        WorkerCommand::Program { program, args: args.into_iter().map(Into::into).collect() }
    }

    fn command(&self) -> Result<(Command, String), SuperviseError> {
        let program = match self {
            WorkerCommand::CurrentExe => std::env::current_exe()
                .map_err(|source| SuperviseError::Spawn { program: "the current executable".into(), source })?,
            WorkerCommand::Program { program, .. } => program.clone(),
        };
        let mut cmd = Command::new(&program);
        if let WorkerCommand::Program { args, .. } = self {
            cmd.args(args);
        }
        Ok((cmd, program.display().to_string()))
    }
}

/// How trials are supervised.
#[derive(Debug, Clone)]
pub struct TrialConfig {
    /// The worker program.
    pub worker: WorkerCommand,
    /// Longest a trial may run, from its `start` phase to its output; `None` = no limit.
    pub timeout: Option<Duration>,
    /// Longest a new worker may take to say hello.
    pub handshake_timeout: Duration,
    /// Lines of the worker's log (stderr) kept for a crash report.
    pub log_lines: usize,
    /// CPU affinity, scheduling policy and memory policy applied to each worker before it
    /// starts, and observed once per trial (see [`crate::placement`]).
    pub placement: Option<crate::placement::Probe>,
    /// Set from outside to kill the worker in progress ([`Ending::Cancelled`]).
    pub cancel: Option<super::Cancel>,
    /// What is sampled of the worker, from outside, while each trial runs (on by default);
    /// each output comes with its window's summary.
    pub telemetry: crate::telemetry::TelemetryConfig,
}

impl Default for TrialConfig {
    fn default() -> Self {
        TrialConfig {
            worker: WorkerCommand::default(),
            timeout: None,
            handshake_timeout: Duration::from_secs(60),
            log_lines: 20,
            placement: None,
            cancel: None,
            telemetry: crate::telemetry::TelemetryConfig::default(),
        }
    }
}

impl TrialConfig {
    /// Sets the per-trial timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the worker program.
    pub fn worker(mut self, worker: WorkerCommand) -> Self {
        self.worker = worker;
        self
    }
}

/// Where a capability's work runs: in a supervised worker process (the default: a llama.cpp
/// abort or fault becomes a record), or in the caller's own process (no process start-up, no
/// protection).
#[derive(Debug, Clone)]
#[non_exhaustive]
// Built once per run and matched everywhere: boxing the worker's configuration buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Isolation {
    /// In the calling process.
    InProcess,
    /// In supervised worker processes.
    Worker(TrialConfig),
}

impl Default for Isolation {
    fn default() -> Self {
        Isolation::Worker(TrialConfig::default())
    }
}

impl Isolation {
    /// Worker processes, each trial killed after `timeout` when one is given.
    pub fn worker(timeout: Option<Duration>) -> Self {
        Isolation::Worker(TrialConfig { timeout, ..TrialConfig::default() })
    }
}

/// How a worker ended when it did not finish its job: carried by `crashed` and `timeout`
/// records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashReport {
    /// The worker's process id.
    pub pid: u32,
    /// Name of the signal that ended it (`SIGKILL`, `SIGABRT`, `SIGSEGV`), if one did.
    pub signal: Option<String>,
    /// Its number.
    pub signal_number: Option<i32>,
    /// Exit status, if it exited.
    pub exit_code: Option<i32>,
    /// The kernel wrote a core dump.
    pub core_dumped: bool,
    /// The supervisor killed it at the per-trial timeout.
    pub timed_out: bool,
    /// The timeout in force, ms.
    pub timeout_ms: Option<u64>,
    /// Time from the trial's start to the end of the worker, ms.
    pub elapsed_ms: u64,
    /// The last phase the worker reported for this trial.
    pub phase: Option<Phase>,
    /// ggml's abort message (`file:line: message`), when llama.cpp aborted.
    pub abort_message: Option<String>,
    /// The last lines of the worker's stderr (llama.cpp's log).
    pub log_tail: Vec<String>,
}

impl CrashReport {
    /// One line: what happened, and where.
    pub fn describe(&self) -> String {
        let what = match (&self.signal, self.exit_code) {
            _ if self.timed_out => {
                format!("timed out after {} ms; worker killed", self.timeout_ms.unwrap_or(self.elapsed_ms))
            }
            (Some(sig), _) => format!("worker killed by {sig}{}", if self.core_dumped { " (core dumped)" } else { "" }),
            (None, Some(code)) => format!("worker exited with status {code}"),
            (None, None) => "worker ended".to_string(),
        };
        let what = match self.phase {
            Some(p) => format!("{what} during {}", phase_name(p)),
            None => what,
        };
        match &self.abort_message {
            Some(m) => format!("{what}: {m}"),
            None => what,
        }
    }
}

fn phase_name(p: Phase) -> String {
    match p {
        Phase::Start => "start".into(),
        Phase::Load => "model load".into(),
        Phase::Context => "context creation".into(),
        Phase::Warmup => "warmup".into(),
        Phase::Repetition { rep, of } => format!("repetition {rep}/{of}"),
        Phase::Chunk { chunk, of } => format!("chunk {chunk}/{of}"),
        Phase::Finished => "finish".into(),
    }
}

/// What [`Trial::next_event`] returns.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A phase of trial `index` began (`unix_ns`: the worker's clock).
    Phase {
        /// Trial index.
        index: usize,
        /// The phase.
        phase: Phase,
        /// When, ns since the Unix epoch.
        unix_ns: u64,
    },
    /// Trial `index` made progress.
    Progress {
        /// Trial index.
        index: usize,
        /// As JSON.
        value: serde_json::Value,
    },
    /// Trial `index` produced its output.
    Output {
        /// Trial index.
        index: usize,
        /// As JSON.
        value: serde_json::Value,
        /// What was sampled of the worker while the trial ran.
        telemetry: Box<crate::telemetry::Telemetry>,
    },
    /// The worker is gone.
    End(Ending),
}

/// How a worker ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum Ending {
    /// It finished its job.
    Done,
    /// It died, or said it could not run the job (then `error` is set), while `index` ran
    /// (`None`: between trials).
    Crashed {
        /// The trial it was in.
        index: Option<usize>,
        /// What the worker said, when it reported an error itself.
        error: Option<String>,
        /// How it ended.
        report: CrashReport,
    },
    /// Trial `index` ran past the timeout; the worker was killed.
    TimedOut {
        /// The trial.
        index: usize,
        /// How it ended.
        report: CrashReport,
    },
    /// [`TrialConfig::cancel`] was set; the worker was killed while `index` ran (`None`:
    /// between trials).
    Cancelled {
        /// The trial it was in.
        index: Option<usize>,
        /// How it ended.
        report: CrashReport,
    },
}

enum Line {
    Msg(WorkerMsg),
    Other(String),
}

/// A running worker process and its job.
pub struct Trial {
    child: Child,
    pid: u32,
    program: String,
    lines: Receiver<Line>,
    log: Arc<Mutex<VecDeque<String>>>,
    log_thread: Option<JoinHandle<()>>,
    timeout: Option<Duration>,
    /// The trial in progress: index, last phase, when it started.
    current: Option<(usize, Phase, Instant)>,
    worker_error: Option<String>,
    abort_message: Option<String>,
    ended: bool,
    placement: Option<crate::placement::Probe>,
    cancel: Option<super::Cancel>,
    recorder: crate::telemetry::Recorder,
}

impl Trial {
    /// Starts a worker on `job` and waits for its hello.
    ///
    /// # Errors
    /// [`SuperviseError`] when the worker cannot be started, does not answer as a worker, or
    /// speaks another protocol version. A worker that starts and then dies is not an error:
    /// [`next_event`](Self::next_event) reports it.
    pub fn spawn(job: &Job, opts: &TrialConfig) -> Result<Trial, SuperviseError> {
        if std::env::var_os(WORKER_ENV).is_some() {
            return Err(SuperviseError::Recursive);
        }
        let input = serde_json::to_vec(job)?;
        let (mut cmd, program) = opts.worker.command()?;
        cmd.env(WORKER_ENV, "1");
        // ggml's abort callback reports the message; a gdb backtrace would only delay the end.
        if std::env::var_os("GGML_NO_BACKTRACE").is_none() {
            cmd.env("GGML_NO_BACKTRACE", "1");
        }
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        if let Some(probe) = &opts.placement {
            probe.install(&mut cmd);
        }
        let mut child = cmd.spawn().map_err(|source| SuperviseError::Spawn { program: program.clone(), source })?;
        let pid = child.id();
        let (mut stdin, stdout, stderr) = (
            child.stdin.take().expect("stdin piped"),
            child.stdout.take().expect("stdout piped"),
            child.stderr.take().expect("stderr piped"),
        );
        // A thread writes the job: a program that is not a worker may never read it.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let msg = match serde_json::from_str::<WorkerMsg>(&line) {
                    Ok(m) => Line::Msg(m),
                    Err(_) => Line::Other(line),
                };
                if tx.send(msg).is_err() {
                    break;
                }
            }
        });
        let log = Arc::new(Mutex::new(VecDeque::with_capacity(opts.log_lines)));
        let keep = opts.log_lines;
        let log_w = Arc::clone(&log);
        let log_thread = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                tracing::debug!(target: "benchkit::worker", pid, "{line}");
                let mut log = log_w.lock().unwrap_or_else(|e| e.into_inner());
                if log.len() == keep {
                    log.pop_front();
                }
                if keep > 0 {
                    log.push_back(line);
                }
            }
        });
        let mut trial = Trial {
            child,
            pid,
            program,
            lines,
            log,
            log_thread: Some(log_thread),
            timeout: opts.timeout,
            current: None,
            worker_error: None,
            abort_message: None,
            ended: false,
            placement: opts.placement.clone(),
            cancel: opts.cancel.clone(),
            recorder: crate::telemetry::Recorder::start(pid, &opts.telemetry),
        };
        trial.handshake(opts.handshake_timeout)?;
        Ok(trial)
    }

    fn handshake(&mut self, limit: Duration) -> Result<(), SuperviseError> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(Line::Msg(WorkerMsg::Hello { protocol, .. })) if protocol == PROTOCOL_VERSION => return Ok(()),
                Ok(Line::Msg(WorkerMsg::Hello { protocol, .. })) => {
                    self.kill();
                    return Err(SuperviseError::Protocol { got: protocol });
                }
                Ok(_) => continue,
                Err(_) => {
                    self.kill();
                    return Err(SuperviseError::NoHandshake { program: self.program.clone(), secs: limit.as_secs() });
                }
            }
        }
    }

    /// What was sampled of trial `index` so far (its window closes): for the record of a
    /// trial that crashed, timed out or was cancelled.
    pub fn take_telemetry(&self, index: usize) -> crate::telemetry::Telemetry {
        self.recorder.take(index)
    }

    /// The worker's process id, known before any trial starts.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The next thing that happens: a phase, an output, or the end of the worker. Enforces the
    /// per-trial timeout. After [`Event::End`] it keeps returning `End(Done)`.
    pub fn next_event(&mut self) -> Event {
        if self.ended {
            return Event::End(Ending::Done);
        }
        loop {
            let deadline = match (self.timeout, self.current) {
                (Some(t), Some((_, _, started))) => Some(started + t),
                _ => None,
            };
            if self.cancel.as_ref().is_some_and(super::Cancel::is_cancelled) {
                self.kill();
                let status = self.child.wait().ok();
                let report = self.report(status, false);
                self.ended = true;
                return Event::End(Ending::Cancelled { index: self.current.map(|(i, ..)| i), report });
            }
            // With a cancel flag, wake up often enough to look at it.
            let deadline = match (deadline, &self.cancel) {
                (d, None) => d,
                (None, Some(_)) => Some(Instant::now() + super::cancel::POLL),
                (Some(d), Some(_)) => Some(d.min(Instant::now() + super::cancel::POLL)),
            };
            let line = match deadline {
                Some(d) => self.lines.recv_timeout(d.saturating_duration_since(Instant::now())),
                None => self.lines.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match line {
                Ok(Line::Msg(WorkerMsg::Phase { index, phase, unix_ns })) => {
                    match (phase, self.current) {
                        (Phase::Start, _) => self.current = Some((index, phase, Instant::now())),
                        (_, Some((i, _, started))) if i == index => self.current = Some((index, phase, started)),
                        _ => self.current = Some((index, phase, Instant::now())),
                    }
                    self.recorder.phase(index, phase, unix_ns);
                    if let Some(probe) = &self.placement {
                        probe.on_phase(self.pid, index, phase);
                    }
                    return Event::Phase { index, phase, unix_ns };
                }
                Ok(Line::Msg(WorkerMsg::Progress { index, value })) => return Event::Progress { index, value },
                Ok(Line::Msg(WorkerMsg::Output { index, value })) => {
                    if self.current.is_some_and(|(i, ..)| i == index) {
                        self.current = None;
                    }
                    let telemetry = Box::new(self.recorder.take(index));
                    return Event::Output { index, value, telemetry };
                }
                Ok(Line::Msg(WorkerMsg::Done)) => {
                    self.current = None;
                    let _ = self.child.wait();
                    self.ended = true;
                    return Event::End(Ending::Done);
                }
                Ok(Line::Msg(WorkerMsg::Error { message })) => self.worker_error = Some(message),
                Ok(Line::Msg(WorkerMsg::Abort { message })) => self.abort_message = Some(message),
                Ok(Line::Msg(WorkerMsg::Hello { .. })) => {}
                Ok(Line::Other(text)) => self.push_log(format!("[stdout] {text}")),
                Err(RecvTimeoutError::Timeout) => {
                    let timed_out = match (self.timeout, self.current) {
                        (Some(t), Some((_, _, started))) => started.elapsed() >= t,
                        _ => false,
                    };
                    if !timed_out {
                        continue; // a wake-up to look at the cancel flag
                    }
                    let (index, ..) = self.current.expect("a deadline implies a current trial");
                    self.kill();
                    let status = self.child.wait().ok();
                    let report = self.report(status, true);
                    self.ended = true;
                    return Event::End(Ending::TimedOut { index, report });
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    let report = self.report(status, false);
                    self.ended = true;
                    let error = self.worker_error.take();
                    return Event::End(Ending::Crashed { index: self.current.map(|(i, ..)| i), error, report });
                }
            }
        }
    }

    fn push_log(&self, line: String) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.push_back(line);
    }

    fn report(&mut self, status: Option<ExitStatus>, timed_out: bool) -> CrashReport {
        // The log thread ends at EOF on stderr, which the exit of the worker brings.
        if let Some(t) = self.log_thread.take() {
            let _ = t.join();
        }
        let log_tail = self.log.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect();
        let signal_number = status.and_then(|s| s.signal());
        CrashReport {
            pid: self.pid,
            signal: signal_number.map(signal_name),
            signal_number,
            exit_code: status.and_then(|s| s.code()),
            core_dumped: status.is_some_and(|s| s.core_dumped()),
            timed_out,
            timeout_ms: self.timeout.map(|t| t.as_millis() as u64),
            elapsed_ms: self.current.map_or(0, |(.., started)| started.elapsed().as_millis() as u64),
            phase: self.current.map(|(_, p, _)| p),
            abort_message: self.abort_message.clone(),
            log_tail,
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
    }
}

impl Drop for Trial {
    fn drop(&mut self) {
        if !self.ended {
            self.kill();
            let _ = self.child.wait();
        }
    }
}

/// `SIGSEGV` for 11: the names Linux uses.
pub(crate) fn signal_name(sig: i32) -> String {
    const NAMES: [&str; 32] = [
        "",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    match usize::try_from(sig).ok().and_then(|i| NAMES.get(i)) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => format!("signal {sig}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(6), "SIGABRT");
        assert_eq!(signal_name(11), "SIGSEGV");
        assert_eq!(signal_name(40), "signal 40");
    }

    #[test]
    fn describes_crashes() {
        let mut r = CrashReport {
            pid: 1,
            signal: Some("SIGKILL".into()),
            signal_number: Some(9),
            exit_code: None,
            core_dumped: false,
            timed_out: false,
            timeout_ms: None,
            elapsed_ms: 10,
            phase: Some(Phase::Repetition { rep: 1, of: 3 }),
            abort_message: None,
            log_tail: vec![],
        };
        assert_eq!(r.describe(), "worker killed by SIGKILL during repetition 1/3");
        r.timed_out = true;
        r.timeout_ms = Some(2000);
        assert_eq!(r.describe(), "timed out after 2000 ms; worker killed during repetition 1/3");
        r = CrashReport { signal: None, signal_number: None, exit_code: Some(2), timed_out: false, phase: None, ..r };
        assert_eq!(r.describe(), "worker exited with status 2");
        r.signal = Some("SIGABRT".into());
        r.abort_message = Some("ggml.c:1: GGML_ASSERT(x) failed".into());
        assert_eq!(r.describe(), "worker killed by SIGABRT: ggml.c:1: GGML_ASSERT(x) failed");
    }

    #[test]
    #[cfg(feature = "bench")]
    fn a_program_that_is_not_a_worker_is_refused() {
        let opts = TrialConfig { handshake_timeout: Duration::from_secs(5), ..TrialConfig::default() }
            .worker(WorkerCommand::program("/bin/echo").with_args(["hello"]));
        let job = Job::Bench { points: vec![], total: 0, settings: Default::default() };
        let err = Trial::spawn(&job, &opts).err().expect("echo is no worker");
        assert!(matches!(err, SuperviseError::NoHandshake { .. }), "{err}");
        let opts = opts.worker(WorkerCommand::program("/nonexistent/benchkit-worker"));
        assert!(matches!(Trial::spawn(&job, &opts), Err(SuperviseError::Spawn { .. })));
    }
}
