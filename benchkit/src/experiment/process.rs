//! The processes of a treatment: each in its own process group (a terminal's Ctrl-C reaches
//! the experiment, which stops them in order) and with `PR_SET_PDEATHSIG` = SIGKILL (a killed
//! experiment leaves no server behind); output appended to the treatment's log files.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::supervise::Cancel;

/// How often a wait looks at its process, deadline and [`Cancel`].
const POLL: Duration = Duration::from_millis(50);
/// How long a process gets between SIGTERM and SIGKILL.
pub(crate) const GRACE: Duration = Duration::from_secs(5);

/// `argv` as a command: stdin null, stdout and stderr appended to `log`, its own process group,
/// killed when this process dies.
pub(crate) fn command(argv: &[String], log: &Path) -> std::io::Result<Command> {
    let out = OpenOptions::new().create(true).append(true).open(log)?;
    let mut w = out.try_clone()?;
    let _ = writeln!(w, "$ {}", argv.join(" "));
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out);
    // SAFETY: getpid is async-signal-safe; it runs here, in the parent.
    let parent = unsafe { libc::getpid() };
    // SAFETY: setpgid, prctl, getppid and _exit are async-signal-safe and touch only the child.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setpgid(0, 0) < 0 || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died before the death signal was armed: nobody would stop this one.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    Ok(cmd)
}

/// SIGTERM to `child`'s process group, SIGKILL after `grace`, then SIGKILL to whatever of the
/// group is left; reaps `child`.
pub(crate) fn stop(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    let pgid = child.id() as libc::pid_t;
    if let Ok(Some(s)) = child.try_wait() {
        kill_group(pgid, libc::SIGKILL);
        return Some(s);
    }
    kill_group(pgid, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
            _ => {
                kill_group(pgid, libc::SIGKILL);
                break child.wait().ok();
            }
        }
    };
    // Descendants that outlived the leader are still in its group (the id is not reused while
    // the group has members).
    kill_group(pgid, libc::SIGKILL);
    status
}

fn kill_group(pgid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: killpg only sends a signal; ESRCH (no such group) is fine.
    unsafe {
        libc::killpg(pgid, sig);
    }
}

/// How a command ended.
#[derive(Debug)]
pub(crate) enum Ending {
    /// It exited (or was killed by a signal not of ours).
    Exited(ExitStatus),
    /// It ran past the timeout and was killed.
    TimedOut(Duration),
    /// The experiment was cancelled and it was killed.
    Cancelled,
    /// It could not be started.
    NotStarted(std::io::Error),
}

impl Ending {
    pub(crate) fn success(&self) -> bool {
        matches!(self, Ending::Exited(s) if s.success())
    }

    pub(crate) fn describe(&self, program: &str) -> String {
        match self {
            Ending::Exited(s) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(s)) {
                (Some(c), _) => format!("{program} exited with code {c}"),
                (None, Some(sig)) => format!("{program} was killed by signal {sig}"),
                _ => format!("{program} ended: {s}"),
            },
            Ending::TimedOut(t) => format!("{program} ran past {:.0} s and was killed", t.as_secs_f64()),
            Ending::Cancelled => format!("{program} was stopped: the experiment was interrupted"),
            Ending::NotStarted(e) => format!("cannot run {program}: {e}"),
        }
    }
}

/// Runs `cmd` to its end, killing its process group at `timeout` or on `cancel`.
pub(crate) fn run(cmd: std::io::Result<Command>, timeout: Option<Duration>, cancel: &Cancel) -> Ending {
    let mut child = match cmd.and_then(|mut c| c.spawn()) {
        Ok(c) => c,
        Err(e) => return Ending::NotStarted(e),
    };
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(s)) => {
                kill_group(child.id() as libc::pid_t, libc::SIGKILL);
                return Ending::Exited(s);
            }
            Ok(None) => {}
            Err(e) => {
                stop(&mut child, GRACE);
                return Ending::NotStarted(e);
            }
        }
        if cancel.is_cancelled() {
            stop(&mut child, GRACE);
            return Ending::Cancelled;
        }
        if let Some(t) = timeout.filter(|t| start.elapsed() >= *t) {
            stop(&mut child, GRACE);
            return Ending::TimedOut(t);
        }
        std::thread::sleep(POLL);
    }
}

/// Waits until `url` (http://host:port/path) answers 200, `server` is still running and
/// `cancel` is not set.
///
/// # Errors
/// Why it did not: the server ended, the timeout passed (with the last answer), cancelled.
pub(crate) fn wait_http(
    url: &str,
    timeout: Duration,
    server: Option<&mut Child>,
    cancel: &Cancel,
) -> Result<(), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url}: not an http:// URL"))?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let addr = if authority.contains(':') { authority.to_string() } else { format!("{authority}:80") };
    let start = Instant::now();
    let mut server = server;
    loop {
        if let Some(s) = server.as_deref_mut() {
            if let Ok(Some(status)) = s.try_wait() {
                return Err(format!(
                    "{}, before {url} answered",
                    Ending::Exited(status).describe("the spawned process")
                ));
            }
        }
        if cancel.is_cancelled() {
            return Err("interrupted while waiting for the server".into());
        }
        let last = match get_status(&addr, authority, path) {
            Ok(200) => return Ok(()),
            Ok(code) => format!("HTTP {code}"),
            Err(e) => e,
        };
        if start.elapsed() >= timeout {
            return Err(format!("{url} did not answer 200 within {:.0} s (last: {last})", timeout.as_secs_f64()));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The status code of `GET path`.
fn get_status(addr: &str, host: &str, path: &str) -> Result<u16, String> {
    let sock = addr.to_socket_addrs().map_err(|e| e.to_string())?.next().ok_or("no address")?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let n = s.read(&mut head).map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| format!("not HTTP: {line:?}"))
}

/// A free loopback port (the OS's choice; free when this returns).
pub(crate) fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Creates (truncates) a log file, so a retried treatment's log is its own.
pub(crate) fn fresh_log(path: &Path) -> std::io::Result<()> {
    File::create(path).map(|_| ())
}
