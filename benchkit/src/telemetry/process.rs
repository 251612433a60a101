//! One process, from /proc: CPU time, memory, page faults and context switches.

use super::{Probe, Roots, Sample};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;

/// What /proc says about a process at one instant. Counters are cumulative since it started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessSample {
    /// User CPU time, all threads (exited ones included), seconds.
    pub user_s: f64,
    /// System CPU time, seconds.
    pub system_s: f64,
    /// Minor page faults.
    pub minor_faults: u64,
    /// Major page faults (read from disk).
    pub major_faults: u64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// Peak resident set size since start (VmHWM), bytes.
    pub hwm_bytes: u64,
    /// Threads alive.
    pub threads: u64,
    /// Voluntary context switches of every thread seen (an exited thread keeps its last
    /// count, so the sum never goes back).
    pub voluntary_ctxt_switches: u64,
    /// Involuntary context switches (preemptions), likewise.
    pub nonvoluntary_ctxt_switches: u64,
}

/// Samples `/proc/PID/stat`, `/proc/PID/status` and `/proc/PID/task/*/status`.
pub struct ProcessProbe {
    dir: PathBuf,
    ticks_per_s: f64,
    /// Last counts per thread id: threads come and go, their switches must not vanish.
    per_task: HashMap<u32, (u64, u64)>,
}

impl ProcessProbe {
    /// A probe of process `pid` under `roots`.
    pub fn new(roots: &Roots, pid: u32) -> Self {
        ProcessProbe { dir: roots.proc.join(pid.to_string()), ticks_per_s: clock_ticks(), per_task: HashMap::new() }
    }

    fn read(&mut self) -> Result<ProcessSample, String> {
        let stat_path = self.dir.join("stat");
        let stat = std::fs::read_to_string(&stat_path).map_err(|e| format!("{}: {e}", stat_path.display()))?;
        let mut s =
            parse_stat(&stat, self.ticks_per_s).ok_or_else(|| format!("{}: unexpected format", stat_path.display()))?;
        let status_path = self.dir.join("status");
        let status = std::fs::read_to_string(&status_path).map_err(|e| format!("{}: {e}", status_path.display()))?;
        let kb = |key: &str| status_field(&status, key).map_or(0, |v| v * 1024);
        (s.rss_bytes, s.hwm_bytes) = (kb("VmRSS:"), kb("VmHWM:"));
        s.threads = status_field(&status, "Threads:").unwrap_or(0);
        if let Ok(tasks) = std::fs::read_dir(self.dir.join("task")) {
            for t in tasks.flatten() {
                let Some(tid) = t.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
                // A thread that exits between the listing and the read keeps its last counts.
                if let Ok(text) = std::fs::read_to_string(t.path().join("status")) {
                    let v = status_field(&text, "voluntary_ctxt_switches:").unwrap_or(0);
                    let nv = status_field(&text, "nonvoluntary_ctxt_switches:").unwrap_or(0);
                    self.per_task.insert(tid, (v, nv));
                }
            }
        }
        if self.per_task.is_empty() {
            // No task directory (a fake root, an old kernel): the main thread's counts.
            let v = status_field(&status, "voluntary_ctxt_switches:").unwrap_or(0);
            let nv = status_field(&status, "nonvoluntary_ctxt_switches:").unwrap_or(0);
            (s.voluntary_ctxt_switches, s.nonvoluntary_ctxt_switches) = (v, nv);
        } else {
            s.voluntary_ctxt_switches = self.per_task.values().map(|c| c.0).sum();
            s.nonvoluntary_ctxt_switches = self.per_task.values().map(|c| c.1).sum();
        }
        Ok(s)
    }
}

impl Probe for ProcessProbe {
    fn name(&self) -> &'static str {
        "process"
    }

    fn start(&mut self) -> Result<(), String> {
        self.read().map(|_| ())
    }

    fn sample(&mut self, out: &mut Sample) {
        out.process = self.read().ok();
    }
}

/// utime, stime, minflt, majflt from `/proc/PID/stat`. The command name may hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn parse_stat(text: &str, ticks_per_s: f64) -> Option<ProcessSample> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) ... minflt(7) cminflt(8) majflt(9) cmajflt(10) utime(11) stime(12)
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    Some(ProcessSample {
        minor_faults: num(7)?,
        major_faults: num(9)?,
        user_s: num(11)? as f64 / ticks_per_s,
        system_s: num(12)? as f64 / ticks_per_s,
        ..ProcessSample::default()
    })
}

/// `Key:   123 kB` -> 123.
pub(crate) fn status_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn clock_ticks() -> f64 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sysconf reads a constant of the running system; no memory is passed.
        let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if t > 0 {
            return t as f64;
        }
    }
    100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_a_name_holding_spaces_and_parentheses() {
        let line = "42 (a b) c)) S 1 42 42 0 -1 4194304 150 0 3 0 250 50 0 0 20 0 4 0 100 0 0";
        let s = parse_stat(line, 100.0).unwrap();
        assert_eq!((s.minor_faults, s.major_faults), (150, 3));
        assert!((s.user_s - 2.5).abs() < 1e-9 && (s.system_s - 0.5).abs() < 1e-9, "{s:?}");
        assert!(parse_stat("42 (x) S 1", 100.0).is_none());
    }

    #[test]
    fn sums_threads_and_keeps_the_counts_of_exited_ones() {
        let dir = tempfile::tempdir().unwrap();
        let roots = Roots { proc: dir.path().into(), sys: dir.path().join("sys") };
        let p = dir.path().join("7");
        let task = |tid: u32, v: u64, nv: u64| {
            let d = p.join("task").join(tid.to_string());
            std::fs::create_dir_all(&d).unwrap();
            let text = format!("voluntary_ctxt_switches:\t{v}\nnonvoluntary_ctxt_switches:\t{nv}\n");
            std::fs::write(d.join("status"), text).unwrap();
        };
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("stat"), "7 (w) S 1 7 7 0 -1 0 10 0 1 0 100 20 0 0 20 0 2 0 1 0 0").unwrap();
        std::fs::write(p.join("status"), "VmHWM:\t 2048 kB\nVmRSS:\t 1024 kB\nThreads:\t2\n").unwrap();
        task(7, 5, 1);
        task(8, 10, 4);
        let mut probe = ProcessProbe::new(&roots, 7);
        let s = probe.read().unwrap();
        assert_eq!((s.voluntary_ctxt_switches, s.nonvoluntary_ctxt_switches), (15, 5));
        assert_eq!((s.rss_bytes, s.hwm_bytes, s.threads), (1 << 20, 2 << 20, 2));
        std::fs::remove_dir_all(p.join("task/8")).unwrap();
        task(7, 6, 1);
        let s = probe.read().unwrap();
        assert_eq!((s.voluntary_ctxt_switches, s.nonvoluntary_ctxt_switches), (16, 5), "thread 8's counts stay");
        assert!(ProcessProbe::new(&roots, 99).start().unwrap_err().contains("99/stat"));
    }
}
