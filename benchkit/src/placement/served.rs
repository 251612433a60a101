//! A server the harness starts for each trial (llama-server, or any OpenAI-compatible one), so
//! that the server is the process placed: the arm is applied to it between fork and exec, it
//! is observed while the replay runs, and stopped after. The replay's client stays in the
//! harness, unplaced.

use super::child::{describe_status, OwnedChild};
use super::probe::Probe;
use super::spec::Requested;
use serde::Serialize;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Replaced, in the server's command and the replay's base URL, by a free loopback port
/// chosen for each trial.
pub const PORT_PLACEHOLDER: &str = "{port}";

/// How to start the server and know it is ready.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerSpec {
    /// Program and arguments; [`PORT_PLACEHOLDER`] is replaced by the trial's port.
    pub command: Vec<String>,
    /// Polled with GET until it answers 200 (llama-server answers 503 while it loads).
    pub health_path: String,
    /// Longest the server may take to answer 200.
    #[serde(serialize_with = "crate::serde_duration::secs::serialize")]
    pub ready_timeout: Duration,
    /// After SIGTERM, how long before SIGKILL.
    #[serde(serialize_with = "crate::serde_duration::secs::serialize")]
    pub stop_timeout: Duration,
    /// Appended for an arm with a memory policy, so that the weights are read into memory
    /// the policy places (page-cache pages keep their first node). llama-server's:
    /// `--load-mode none` (older versions: `--no-mmap`).
    pub no_mmap_args: Vec<String>,
    /// The model file, whose mapped pages are counted apart; `None`: the replay's tokenizer.
    pub model: Option<PathBuf>,
}

impl ServerSpec {
    /// `command` with llama-server's defaults: `/health`, 300 s to get ready, 10 s to stop,
    /// `--load-mode none` for memory policies.
    pub fn new(command: Vec<String>) -> Self {
        ServerSpec {
            command,
            health_path: "/health".into(),
            ready_timeout: Duration::from_secs(300),
            stop_timeout: Duration::from_secs(10),
            no_mmap_args: vec!["--load-mode".into(), "none".into()],
            model: None,
        }
    }

    /// Splits a shell-like command line (quotes group words) into a spec.
    ///
    /// # Errors
    /// An empty command, or an unclosed quote.
    pub fn parse(line: &str) -> Result<Self, String> {
        let command = super::spec::split_words(line)?;
        if command.is_empty() {
            return Err("the server command is empty".into());
        }
        Ok(ServerSpec::new(command))
    }
}

/// A server started for one trial; stopped on [`stop`](Self::stop) or drop.
#[derive(Debug)]
pub(crate) struct RunningServer {
    child: OwnedChild,
    stop_timeout: Duration,
    port: u16,
}

impl RunningServer {
    /// Picks a port, starts the server placed by `probe` and waits for its health check.
    ///
    /// # Errors
    /// A sentence: the program does not start, exits, or is not ready in time (it is
    /// stopped then).
    pub(crate) fn start(spec: &ServerSpec, probe: &Probe, req: &Requested) -> Result<Self, String> {
        let port = free_port().map_err(|e| format!("cannot find a free loopback port: {e}"))?;
        let mut argv: Vec<String> =
            spec.command.iter().map(|a| a.replace(PORT_PLACEHOLDER, &port.to_string())).collect();
        if req.mem.is_some() {
            argv.extend(spec.no_mmap_args.iter().cloned());
        }
        let program = argv[0].clone();
        let mut cmd = Command::new(&program);
        cmd.args(&argv[1..]);
        probe.install(&mut cmd);
        let child = OwnedChild::spawn(cmd, &program).map_err(|e| format!("cannot start server {program:?}: {e}"))?;
        let mut me = RunningServer { child, stop_timeout: spec.stop_timeout, port };
        let deadline = Instant::now() + spec.ready_timeout;
        loop {
            if let Some(status) = me.child.exited() {
                return Err(format!(
                    "server {program:?} exited ({}) before it was ready{}",
                    describe_status(status),
                    last_line(&me.child.log_tail())
                ));
            }
            if health(port, &spec.health_path) == Some(200) {
                return Ok(me);
            }
            if Instant::now() >= deadline {
                me.stop();
                return Err(format!(
                    "server {program:?} did not answer 200 on {} within {} s; stopped{}",
                    spec.health_path,
                    spec.ready_timeout.as_secs_f64(),
                    last_line(&me.child.log_tail())
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.pid()
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Why the server is no longer there, if it is not.
    pub(crate) fn gone(&mut self) -> Option<String> {
        let status = self.child.exited()?;
        Some(format!(
            "the server exited during the trial ({}){}",
            describe_status(status),
            last_line(&self.child.log_tail())
        ))
    }

    /// SIGTERM, then SIGKILL after the spec's stop timeout; the signal that ended it.
    pub(crate) fn stop(&mut self) -> Option<String> {
        self.child.stop(libc::SIGTERM, self.stop_timeout)
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn last_line(log: &[String]) -> String {
    log.last().map(|l| format!("; its last line: {l}")).unwrap_or_default()
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// The status code of `GET path` on the loopback port, `None` when nothing answers.
fn health(port: u16, path: &str) -> Option<u16> {
    let mut s =
        TcpStream::connect_timeout(&(std::net::Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).ok()?;
    // "HTTP/1.1 200": 12 bytes, which may come in pieces.
    let (mut head, mut n) = ([0u8; 32], 0);
    while n < 12 {
        match s.read(&mut head[n..]).ok()? {
            0 => break,
            k => n += k,
        }
    }
    let line = std::str::from_utf8(&head[..n]).ok()?;
    line.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_reads_the_status_code() {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            for reply in ["HTTP/1.1 503 Service Unavailable\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n"] {
                let (mut c, _) = listener.accept().unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 256];
                while !got.ends_with(b"\r\n\r\n") {
                    let n = c.read(&mut buf).unwrap();
                    assert!(n > 0);
                    got.extend_from_slice(&buf[..n]);
                }
                assert!(got.starts_with(b"GET /health HTTP/1.1\r\n"));
                c.write_all(reply.as_bytes()).unwrap();
            }
        });
        assert_eq!(health(port, "/health"), Some(503));
        assert_eq!(health(port, "/health"), Some(200));
        t.join().unwrap();
        assert_eq!(health(port, "/health"), None);
    }

    #[test]
    fn commands_split_like_a_shell() {
        let s = ServerSpec::parse("llama-server -m 'my model.gguf' --port {port}").unwrap();
        assert_eq!(s.command, ["llama-server", "-m", "my model.gguf", "--port", "{port}"]);
        assert!(ServerSpec::parse("  ").is_err());
        assert!(ServerSpec::parse("llama-server -m 'x").is_err());
    }
}
