//! A helper process the harness owns for a trial (a sched_ext scheduler, a server): spawned in
//! its own process group, so that a terminal's Ctrl-C reaches the harness first and it stops
//! the helper in order, with `PR_SET_PDEATHSIG` = SIGKILL, so that it dies with the harness
//! even when the harness is killed outright. Its output is kept: the last lines say why it
//! failed.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lines of the helper's output kept.
const TAIL: usize = 20;

pub(crate) struct OwnedChild {
    child: Child,
    program: String,
    log: Arc<Mutex<VecDeque<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for OwnedChild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedChild").field("pid", &self.child.id()).field("program", &self.program).finish()
    }
}

impl OwnedChild {
    /// Spawns `cmd` (stdin null, stdout and stderr kept) in its own process group, to die
    /// with this thread.
    pub(crate) fn spawn(mut cmd: Command, program: &str) -> std::io::Result<Self> {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // SAFETY: setpgid and prctl are async-signal-safe and touch only the child.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setpgid(0, 0) < 0 || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let mut readers = Vec::new();
        for stream in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as _),
        ]
        .into_iter()
        .flatten()
        {
            let log = Arc::clone(&log);
            let program = program.to_string();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    tracing::debug!(target: "benchkit::placement", program = %program, "{line}");
                    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                    if log.len() == TAIL {
                        log.pop_front();
                    }
                    log.push_back(line);
                }
            }));
        }
        Ok(OwnedChild { child, program: program.to_string(), log, readers })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn program(&self) -> &str {
        &self.program
    }

    /// How it ended, once it has; its last lines are read by then (the readers get up to a
    /// second, a descendant may hold the pipes open).
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.try_wait().ok().flatten()?;
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.readers.retain(|r| !r.is_finished());
        Some(status)
    }

    /// The last lines it printed.
    pub(crate) fn log_tail(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
    }

    /// `signal`, then SIGKILL when it has not ended within `grace`; returns the last signal
    /// sent (`None`: it had already ended).
    pub(crate) fn stop(&mut self, signal: libc::c_int, grace: Duration) -> Option<String> {
        if self.exited().is_some() {
            return None;
        }
        // SAFETY: kill(2) on our own, not yet reaped, child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        let deadline = Instant::now() + grace;
        while self.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if self.exited().is_some() {
            return Some(crate::supervise::signal_name(signal));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Some("SIGKILL".into())
    }
}

/// `status 1`, `killed by SIGSEGV`.
pub(crate) fn describe_status(s: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("status {c}"),
        (None, Some(sig)) => format!("killed by {}", crate::supervise::signal_name(sig)),
        _ => "ended".into(),
    }
}
