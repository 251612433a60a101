//! sched_ext: the kernel's state in sysfs, and schedulers attached for an arm's trials and
//! always detached again.
//!
//! The sysfs directory is configurable ([`ScxSysfs::new`]) so that tests drive a fake one
//! with a fake scheduler. A scheduler is spawned in its own process group (a terminal's Ctrl-C
//! reaches the harness, which detaches it in order) with `PR_SET_PDEATHSIG` = SIGKILL, so that
//! the kernel ejects it even when the harness is killed outright. SIGINT, SIGTERM and SIGHUP
//! to the harness detach every attached scheduler before the process ends as the signal
//! would have ended it; a panic detaches through `Drop`.

use super::child::{describe_status, OwnedChild};
use super::spec::SchedulerSpec;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where the kernel shows sched_ext's state.
pub const SCHED_EXT_SYSFS: &str = "/sys/kernel/sched_ext";

/// Errors attaching a sched_ext scheduler.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScxError {
    /// The kernel has no sched_ext (no state file).
    #[error("this kernel lacks sched_ext: no {} (CONFIG_SCHED_CLASS_EXT, Linux 6.12 or later)", .root.join("state").display())]
    Unsupported {
        /// The sysfs directory read.
        root: PathBuf,
    },
    /// The scheduler program is not there.
    #[error("scheduler binary {program:?} {why}")]
    NotFound {
        /// The program as given.
        program: String,
        /// `not found in PATH`, `does not exist`.
        why: String,
    },
    /// Another scheduler is attached (or one is still enabling/disabling).
    #[error("sched_ext state is {state:?}{}, not \"disabled\": another scheduler is attached", .ops.as_deref().map(|o| format!(" (ops {o:?})")).unwrap_or_default())]
    NotDisabled {
        /// What `state` reads.
        state: String,
        /// `root/ops`, when present.
        ops: Option<String>,
    },
    /// The program could not be started.
    #[error("cannot start scheduler {program:?}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// It exited before the kernel reported `enabled`.
    #[error("scheduler {program:?} exited ({status}) before sched_ext was enabled{}", detail(.kernel, .log))]
    Exited {
        /// The program.
        program: String,
        /// How it exited.
        status: String,
        /// The kernel's reason, when the kernel log was readable.
        kernel: Option<String>,
        /// The last lines it printed.
        log: Vec<String>,
    },
    /// `enabled` did not come within the timeout; it was detached again.
    #[error("sched_ext state still {state:?} {secs} s after starting {program:?}; scheduler stopped{}", detail(.kernel, .log))]
    AttachTimeout {
        /// The program.
        program: String,
        /// The last state read.
        state: String,
        /// The timeout, s.
        secs: f64,
        /// The kernel's reason, when the kernel log was readable.
        kernel: Option<String>,
        /// The last lines it printed.
        log: Vec<String>,
    },
}

fn detail(kernel: &Option<String>, log: &[String]) -> String {
    let mut s = String::new();
    if let Some(k) = kernel {
        s.push_str(&format!("; kernel: {k}"));
    }
    if let Some(last) = log.last() {
        s.push_str(&format!("; its last line: {last}"));
    }
    s
}

/// sched_ext's sysfs files at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScxSnapshot {
    /// `enabling`, `enabled`, `disabling`, `disabled`; `unsupported` when the kernel has no
    /// sched_ext.
    pub state: String,
    /// The attached scheduler's name (`root/ops`).
    pub ops: Option<String>,
    /// Goes up on every enable.
    pub enable_seq: Option<u64>,
    /// 1 in full-switch mode.
    pub switch_all: Option<u64>,
    /// Tasks the scheduler rejected.
    pub nr_rejected: Option<u64>,
    /// CPU hotplug events seen.
    pub hotplug_seq: Option<u64>,
    /// `root/events` (Linux 6.15+), as the kernel prints it.
    pub events: Option<String>,
}

impl ScxSnapshot {
    /// No scheduler attached: `disabled`, or no sched_ext at all.
    pub fn is_disabled(&self) -> bool {
        self.state == "disabled" || self.state == "unsupported"
    }
}

/// The sched_ext sysfs directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScxSysfs {
    root: PathBuf,
}

impl Default for ScxSysfs {
    fn default() -> Self {
        ScxSysfs::new(SCHED_EXT_SYSFS)
    }
}

impl ScxSysfs {
    /// sched_ext's files under `root` (`/sys/kernel/sched_ext` on a live system).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ScxSysfs { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the kernel has sched_ext.
    pub fn supported(&self) -> bool {
        self.root.join("state").exists()
    }

    fn read(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.root.join(name)).ok().map(|s| s.trim().to_string())
    }

    /// Reads every file now.
    pub fn snapshot(&self) -> ScxSnapshot {
        let num = |name: &str| self.read(name).and_then(|v| v.parse().ok());
        ScxSnapshot {
            state: self.read("state").unwrap_or_else(|| "unsupported".into()),
            ops: self.read("root/ops").filter(|o| !o.is_empty()),
            enable_seq: num("enable_seq"),
            switch_all: num("switch_all"),
            nr_rejected: num("nr_rejected"),
            hotplug_seq: num("hotplug_seq"),
            events: self.read("root/events"),
        }
    }

    fn wait_for(&self, deadline: Instant, mut done: impl FnMut(&ScxSnapshot) -> bool) -> (bool, ScxSnapshot) {
        loop {
            let s = self.snapshot();
            if done(&s) || Instant::now() >= deadline {
                return (done(&s), s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// New kernel log lines since it was opened: `/dev/kmsg`, or a file in tests.
struct KernelLog {
    file: Option<BufReader<File>>,
}

impl KernelLog {
    fn open(path: &Path) -> Self {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .and_then(|mut f| f.seek(SeekFrom::End(0)).map(|_| f))
            .ok();
        KernelLog { file: file.map(BufReader::new) }
    }

    /// `sched_ext: BPF scheduler "NAME" disabled (REASON)`, the last such line since opening.
    fn ejection_reason(&mut self) -> Option<String> {
        let file = self.file.as_mut()?;
        let mut found = None;
        let mut line = String::new();
        loop {
            line.clear();
            // /dev/kmsg returns one record a read and EAGAIN at the end; a file returns EOF.
            match file.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    // kmsg records are `prio,seq,usec,flags;message`.
                    let msg = line.split_once(';').map_or(line.as_str(), |(_, m)| m).trim();
                    if msg.contains("sched_ext: BPF scheduler") && msg.contains("disabled") {
                        found = Some(msg.to_string());
                    }
                }
            }
        }
        found
    }
}

/// The PIDs of attached schedulers, for the signal handler.
static ATTACHED: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static SIGNALS: OnceLock<()> = OnceLock::new();

/// On SIGINT/SIGTERM/SIGHUP: detach every attached scheduler, then end as the signal would.
fn install_signal_guard() {
    SIGNALS.get_or_init(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            tracing::warn!("cannot install signal handlers: a signal would leave a scheduler attached");
            return;
        };
        std::thread::Builder::new()
            .name("benchkit-scx-guard".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    let pids = ATTACHED.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    for pid in pids {
                        eprintln!("benchkit: signal {sig}: detaching sched_ext scheduler (pid {pid})");
                        stop_pid(pid, DEFAULT_STOP);
                    }
                    let _ = signal_hook::low_level::emulate_default_handler(sig);
                    std::process::exit(128 + sig);
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| tracing::warn!("cannot start the signal guard: {e}"));
    });
}

const DEFAULT_STOP: Duration = Duration::from_secs(6);

/// SIGINT, then SIGKILL after `grace`, to a child this process cannot reap from here.
fn stop_pid(pid: u32, grace: Duration) {
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(')').map(|(_, rest)| !rest.trim_start().starts_with('Z')))
            .unwrap_or(false)
    };
    // SAFETY: plain kill(2) on a PID this process started.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let deadline = Instant::now() + grace;
    while alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if alive() {
        // SAFETY: as above.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
}

/// How a scheduler was detached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetachReport {
    /// The signal that stopped it (`SIGINT`; `SIGKILL` when it ignored SIGINT), or `None`
    /// when it was already gone.
    pub signal: Option<String>,
    /// Time from the first signal to `disabled`, ms.
    pub elapsed_ms: u64,
    /// The state after.
    pub state: String,
}

/// A scheduler attached by this process: detached on [`detach`](Self::detach) or drop.
pub struct AttachedScheduler {
    child: OwnedChild,
    spec: SchedulerSpec,
    sysfs: ScxSysfs,
    attached: ScxSnapshot,
    kmsg: KernelLog,
    detached: Option<DetachReport>,
}

impl std::fmt::Debug for AttachedScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachedScheduler").field("child", &self.child).finish()
    }
}

/// Where `program` is: as given when it has a '/', else the first in `PATH`.
fn locate(program: &str) -> Result<PathBuf, ScxError> {
    let missing = |why: &str| ScxError::NotFound { program: program.to_string(), why: why.into() };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return if p.is_file() { Ok(p) } else { Err(missing("does not exist")) };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .ok_or_else(|| missing("not found in PATH"))
}

/// Checks that an attach could start: sched_ext present and the binary there. Every missing
/// piece is named.
///
/// # Errors
/// The reasons, joined.
pub fn preflight(spec: &SchedulerSpec, sysfs: &ScxSysfs) -> Result<(), String> {
    let mut why = Vec::new();
    if !sysfs.supported() {
        why.push(ScxError::Unsupported { root: sysfs.root.clone() }.to_string());
    }
    if let Err(e) = locate(&spec.command[0]) {
        why.push(e.to_string());
    }
    if why.is_empty() {
        Ok(())
    } else {
        Err(why.join("; "))
    }
}

impl AttachedScheduler {
    /// Spawns the scheduler once sched_ext reads `disabled`, and waits for `enabled`.
    ///
    /// # Errors
    /// [`ScxError`]: no sched_ext, no binary, another scheduler attached, the program exits
    /// or `enabled` does not come within the spec's attach timeout (then it is stopped).
    pub fn attach(spec: &SchedulerSpec, sysfs: &ScxSysfs, kernel_log: &Path) -> Result<Self, ScxError> {
        if !sysfs.supported() {
            return Err(ScxError::Unsupported { root: sysfs.root.clone() });
        }
        let program = spec.command[0].clone();
        let exe = locate(&program)?;
        let before = sysfs.snapshot();
        if before.state != "disabled" {
            return Err(ScxError::NotDisabled { state: before.state, ops: before.ops });
        }
        install_signal_guard();
        let kmsg = KernelLog::open(kernel_log);
        let mut cmd = Command::new(exe);
        cmd.args(&spec.command[1..]);
        let child =
            OwnedChild::spawn(cmd, &program).map_err(|source| ScxError::Spawn { program: program.clone(), source })?;
        ATTACHED.lock().unwrap_or_else(|e| e.into_inner()).push(child.pid());
        let mut me = AttachedScheduler {
            child,
            spec: spec.clone(),
            sysfs: sysfs.clone(),
            attached: before,
            kmsg,
            detached: None,
        };
        let deadline = Instant::now() + spec.attach_timeout;
        loop {
            let now = me.sysfs.snapshot();
            if now.state == "enabled" {
                me.attached = now;
                return Ok(me);
            }
            if let Some(status) = me.child.exited() {
                me.unregister();
                me.detached = Some(DetachReport { signal: None, elapsed_ms: 0, state: now.state });
                return Err(ScxError::Exited {
                    program: me.child.program().to_string(),
                    status: describe_status(status),
                    kernel: me.kmsg.ejection_reason(),
                    log: me.log_tail(),
                });
            }
            if Instant::now() >= deadline {
                me.stop();
                return Err(ScxError::AttachTimeout {
                    program: me.child.program().to_string(),
                    state: now.state,
                    secs: spec.attach_timeout.as_secs_f64(),
                    kernel: me.kmsg.ejection_reason(),
                    log: me.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The scheduler's process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// sched_ext's files right after `enabled`.
    pub fn at_attach(&self) -> &ScxSnapshot {
        &self.attached
    }

    /// The last lines the scheduler printed.
    pub fn log_tail(&self) -> Vec<String> {
        self.child.log_tail()
    }

    /// Whether it is still attached as it was: state `enabled`, `ops` and `enable_seq`
    /// unchanged, its process alive. Returns the snapshot either way, and on an ejection the
    /// reason, with the kernel's when its log is readable.
    pub fn check(&mut self) -> (ScxSnapshot, Result<(), String>) {
        let now = self.sysfs.snapshot();
        let mut why = Vec::new();
        if let Some(status) = self.child.exited() {
            why.push(format!("the scheduler process exited ({})", describe_status(status)));
        }
        if now.state != "enabled" {
            why.push(format!("state is {:?}", now.state));
        }
        if now.ops != self.attached.ops {
            why.push(format!("ops went from {:?} to {:?}", self.attached.ops, now.ops));
        }
        if now.enable_seq != self.attached.enable_seq {
            why.push(format!(
                "enable_seq went from {} to {} (re-attached: ejected and loaded again, or after CPU hotplug)",
                opt(self.attached.enable_seq),
                opt(now.enable_seq)
            ));
        }
        if why.is_empty() {
            return (now, Ok(()));
        }
        let kernel = match self.kmsg.ejection_reason() {
            Some(k) => format!("; kernel: {k}"),
            None if self.kmsg.file.is_none() => "; the kernel log is not readable for the kernel's reason".into(),
            None => String::new(),
        };
        (now, Err(format!("ejected: {}{kernel}", why.join(", "))))
    }

    /// SIGINT, wait for `disabled` and the process's end within the detach timeout, then
    /// SIGKILL and wait again.
    pub fn detach(mut self) -> DetachReport {
        self.stop()
    }

    fn stop(&mut self) -> DetachReport {
        if let Some(r) = &self.detached {
            return r.clone();
        }
        let start = Instant::now();
        let signal = self.child.stop(libc::SIGINT, self.spec.detach_timeout);
        // The kernel disables a scheduler whose process is gone; give it the same time.
        let (_, now) = self.sysfs.wait_for(Instant::now() + self.spec.detach_timeout, ScxSnapshot::is_disabled);
        self.unregister();
        let report = DetachReport { signal, elapsed_ms: start.elapsed().as_millis() as u64, state: now.state };
        if !report.state.contains("disabled") {
            tracing::error!(state = %report.state, "sched_ext did not return to disabled after detaching {}", self.child.program());
        }
        self.detached = Some(report.clone());
        report
    }

    fn unregister(&self) {
        let pid = self.child.pid();
        ATTACHED.lock().unwrap_or_else(|e| e.into_inner()).retain(|p| *p != pid);
    }
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "none".into(), |v| v.to_string())
}

impl Drop for AttachedScheduler {
    fn drop(&mut self) {
        self.stop();
    }
}
