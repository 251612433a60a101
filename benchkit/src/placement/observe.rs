//! What a placed process actually got, read from outside through /proc: each thread's allowed
//! CPUs, policy, nice and sched_ext membership, and where its memory's pages are.

use super::spec::{policy_name, MemMode, Requested, SchedPolicy};
use crate::topology::{format_cpu_list, parse_cpu_list};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One thread of the observed process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadObservation {
    /// Its thread id.
    pub tid: u32,
    /// Its name (`comm`).
    pub comm: String,
    /// `Cpus_allowed_list` from its `status`.
    pub cpus_allowed: String,
    /// Its policy's name (`SCHED_OTHER`, `SCHED_EXT`, ...).
    pub policy: String,
    /// Real-time priority (0 outside FIFO/RR).
    pub rt_priority: u32,
    /// Nice value.
    pub nice: i32,
    /// `ext.enabled` from its `sched`: whether it runs on the sched_ext scheduler; `None` when
    /// the kernel prints no such line (no sched_ext, or no /proc/PID/sched).
    pub ext_enabled: Option<bool>,
}

/// Where the process's memory is, from `/proc/<pid>/numa_maps`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryObservation {
    /// Anonymous pages (heap, the model's weights when loaded without mmap) per NUMA node.
    pub pages_per_node: BTreeMap<u32, u64>,
    /// Anonymous pages under each memory policy, as numa_maps names it (`bind:0`,
    /// `interleave:0-1`, `default`).
    pub pages_per_policy: BTreeMap<String, u64>,
    /// Pages of mappings of the model file (non-zero means it was mmapped).
    pub model_file_pages: u64,
}

/// One look at a process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// The process.
    pub pid: u32,
    /// Every thread alive at the time.
    pub threads: Vec<ThreadObservation>,
    /// Its memory.
    pub memory: MemoryObservation,
}

/// Reads process `pid` under `/proc`; `model`: the model file, whose mappings are counted apart.
///
/// # Errors
/// The I/O error of a process that is gone or unreadable.
pub fn observe(pid: u32, model: Option<&Path>) -> std::io::Result<Observation> {
    observe_in(Path::new("/proc"), pid, model)
}

pub(crate) fn observe_in(proc: &Path, pid: u32, model: Option<&Path>) -> std::io::Result<Observation> {
    let dir = proc.join(pid.to_string());
    let mut threads = Vec::new();
    for entry in std::fs::read_dir(dir.join("task"))? {
        let tdir = entry?.path();
        let Some(tid) = tdir.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse().ok()) else { continue };
        // A thread that exits between the listing and the read is skipped.
        if let Some(t) = read_thread(&tdir, tid) {
            threads.push(t);
        }
    }
    threads.sort_by_key(|t| t.tid);
    let maps = std::fs::read_to_string(dir.join("numa_maps")).unwrap_or_default();
    Ok(Observation { pid, threads, memory: parse_numa_maps(&maps, model) })
}

fn read_thread(tdir: &Path, tid: u32) -> Option<ThreadObservation> {
    let status = std::fs::read_to_string(tdir.join("status")).ok()?;
    let stat = std::fs::read_to_string(tdir.join("stat")).ok()?;
    let (comm, fields) = parse_stat(&stat)?;
    let cpus_allowed =
        status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).map(|v| v.trim().to_string())?;
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<i64>().ok());
    let ext_enabled = std::fs::read_to_string(tdir.join("sched")).ok().and_then(|s| {
        s.lines()
            .find(|l| l.trim_start().starts_with("ext.enabled"))
            .and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim() == "1")
    });
    Some(ThreadObservation {
        tid,
        comm,
        cpus_allowed,
        // stat fields 19 (nice), 40 (rt_priority), 41 (policy), counted from 1 with field 3
        // the first after the command name.
        nice: field(16)? as i32,
        rt_priority: field(37)? as u32,
        policy: policy_name(field(38)? as i32),
        ext_enabled,
    })
}

/// `comm` and the fields after it: the name is in parentheses and may hold spaces or ')'.
fn parse_stat(stat: &str) -> Option<(String, Vec<&str>)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    Some((stat[open + 1..close].to_string(), stat[close + 1..].split_whitespace().collect()))
}

pub(crate) fn parse_numa_maps(text: &str, model: Option<&Path>) -> MemoryObservation {
    let model = model.map(|m| std::fs::canonicalize(m).unwrap_or_else(|_| m.to_path_buf()));
    let mut mem = MemoryObservation::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(_addr), Some(policy)) = (words.next(), words.next()) else { continue };
        let (mut file, mut anon, mut nodes) = (None, 0u64, Vec::new());
        let mut total = 0u64;
        for w in words {
            if let Some(f) = w.strip_prefix("file=") {
                file = Some(f);
            } else if let Some(a) = w.strip_prefix("anon=") {
                anon = a.parse().unwrap_or(0);
            } else if let Some((n, pages)) = w.strip_prefix('N').and_then(|x| x.split_once('=')) {
                if let (Ok(n), Ok(p)) = (n.parse::<u32>(), pages.parse::<u64>()) {
                    nodes.push((n, p));
                    total += p;
                }
            }
        }
        match file {
            Some(f) if model.as_deref().is_some_and(|m| Path::new(f) == m) => mem.model_file_pages += total,
            // File-backed pages sit in the shared page cache, wherever they were first read.
            Some(_) => {}
            None if anon > 0 => {
                *mem.pages_per_policy.entry(policy.to_string()).or_default() += anon;
                for (n, p) in nodes {
                    *mem.pages_per_node.entry(n).or_default() += p;
                }
            }
            None => {}
        }
    }
    mem
}

/// What the sched_ext side of a trial expects of the worker's threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtExpect {
    /// No scheduler: no thread on sched_ext.
    Off,
    /// A full-switch scheduler: every thread on it.
    All,
    /// A partial-switch scheduler: every thread on it (its SCHED_EXT policy is the arm's).
    Partial,
}

/// The mismatches between what was asked and what `obs` shows, one sentence each; empty
/// when the placement held. `unverified` collects what this kernel cannot show.
pub fn mismatches(
    req: &Requested,
    obs: &Observation,
    ext: ExtExpect,
    unverified: &mut BTreeSet<String>,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(cpus) = &req.cpus {
        let want: BTreeSet<u32> = cpus.iter().copied().collect();
        let mut pinned = 0;
        for t in &obs.threads {
            let got: BTreeSet<u32> = parse_cpu_list(&t.cpus_allowed).unwrap_or_default().into_iter().collect();
            if got.len() == 1 {
                pinned += 1;
            }
            let ok = if req.strict { got.is_subset(&want) && !got.is_empty() } else { got == want };
            if !ok {
                out.push(format!(
                    "thread {} ({}) may run on CPUs {}, asked {}{}",
                    t.tid,
                    t.comm,
                    t.cpus_allowed,
                    format_cpu_list(cpus),
                    if req.strict { " (strict: a subset)" } else { "" }
                ));
            }
        }
        if req.strict && want.len() > 1 && pinned == 0 && !obs.threads.is_empty() {
            out.push("strict placement asked, but no thread is pinned to a single CPU".into());
        }
    }
    if let Some(policy) = req.policy {
        let want = policy_name(policy.number());
        for t in obs.threads.iter().filter(|t| t.policy != want || t.rt_priority != u32::from(policy.rt_priority())) {
            out.push(format!(
                "thread {} ({}) runs {} priority {}, asked {policy}",
                t.tid, t.comm, t.policy, t.rt_priority
            ));
        }
    }
    if let Some(nice) = req.nice {
        if !matches!(req.policy, Some(SchedPolicy::Fifo(_) | SchedPolicy::Rr(_) | SchedPolicy::Idle)) {
            for t in obs.threads.iter().filter(|t| t.nice != nice) {
                out.push(format!("thread {} ({}) has nice {}, asked {nice}", t.tid, t.comm, t.nice));
            }
        }
    }
    if let Some(mem) = &req.mem {
        let want = mem.numa_maps_name();
        for (policy, pages) in obs.memory.pages_per_policy.iter().filter(|(p, _)| **p != want) {
            out.push(format!("{pages} anonymous pages under memory policy {policy}, asked {want}"));
        }
        if matches!(mem.mode, MemMode::Bind | MemMode::Interleave) {
            for (node, pages) in obs.memory.pages_per_node.iter().filter(|(n, _)| !mem.nodes.contains(n)) {
                out.push(format!("{pages} pages on node {node}, outside {want}"));
            }
        }
        if obs.memory.model_file_pages > 0 {
            out.push(format!(
                "{} pages of the model file are mapped: a memory policy needs the model loaded without mmap",
                obs.memory.model_file_pages
            ));
        }
    }
    for t in &obs.threads {
        match (ext, t.ext_enabled) {
            (ExtExpect::Off, Some(true)) => out.push(format!("thread {} ({}) runs on sched_ext", t.tid, t.comm)),
            (ExtExpect::All | ExtExpect::Partial, Some(false)) => {
                out.push(format!("thread {} ({}) is not on the sched_ext scheduler (ext.enabled 0)", t.tid, t.comm))
            }
            (ExtExpect::All | ExtExpect::Partial, None) => {
                unverified
                    .insert("per-thread ext.enabled: this kernel's /proc/PID/task/TID/sched has no such line".into());
            }
            _ => {}
        }
    }
    out
}
