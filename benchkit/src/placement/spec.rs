//! What an arm asks for: CPUs, scheduling policy and nice, NUMA memory policy, and a sched_ext
//! scheduler to attach. Parsed from `NAME:key=value,...` or a TOML arms file, checked, and
//! resolved against the machine's topology into [`Requested`].

use super::PlacementError;
use crate::topology::{format_cpu_list, parse_cpu_list, CpuPreset, Topology};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A Linux scheduling policy, with its real-time priority where it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SchedPolicy {
    /// `SCHED_OTHER` (CFS/EEVDF), the default.
    Other,
    /// `SCHED_BATCH`.
    Batch,
    /// `SCHED_IDLE`.
    Idle,
    /// `SCHED_FIFO` with priority 1-99.
    Fifo(u8),
    /// `SCHED_RR` with priority 1-99.
    Rr(u8),
    /// `SCHED_EXT` (7): the task runs on a partial-switch sched_ext scheduler.
    Ext,
}

impl SchedPolicy {
    /// The kernel's policy number.
    pub fn number(self) -> i32 {
        match self {
            SchedPolicy::Other => 0,
            SchedPolicy::Fifo(_) => 1,
            SchedPolicy::Rr(_) => 2,
            SchedPolicy::Batch => 3,
            SchedPolicy::Idle => 5,
            SchedPolicy::Ext => SCHED_EXT,
        }
    }

    /// Its real-time priority (0 for the others).
    pub fn rt_priority(self) -> u8 {
        match self {
            SchedPolicy::Fifo(p) | SchedPolicy::Rr(p) => p,
            _ => 0,
        }
    }
}

/// `SCHED_EXT`, which libc does not define.
pub const SCHED_EXT: i32 = 7;

/// The kernel's name for policy `n`, as `chrt` prints it.
pub fn policy_name(n: i32) -> String {
    match n {
        0 => "SCHED_OTHER".into(),
        1 => "SCHED_FIFO".into(),
        2 => "SCHED_RR".into(),
        3 => "SCHED_BATCH".into(),
        5 => "SCHED_IDLE".into(),
        6 => "SCHED_DEADLINE".into(),
        SCHED_EXT => "SCHED_EXT".into(),
        n => format!("policy {n}"),
    }
}

impl std::fmt::Display for SchedPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SchedPolicy::Other => f.write_str("other"),
            SchedPolicy::Batch => f.write_str("batch"),
            SchedPolicy::Idle => f.write_str("idle"),
            SchedPolicy::Fifo(p) => write!(f, "fifo:{p}"),
            SchedPolicy::Rr(p) => write!(f, "rr:{p}"),
            SchedPolicy::Ext => f.write_str("ext"),
        }
    }
}

impl std::str::FromStr for SchedPolicy {
    type Err = PlacementError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| PlacementError::invalid("policy", s, why);
        let rt = |p: &str| match p.parse::<u8>() {
            Ok(p @ 1..=99) => Ok(p),
            _ => Err(bad("a real-time priority is 1 to 99")),
        };
        Ok(match s.trim().split_once(':') {
            None => match s.trim() {
                "other" | "normal" => SchedPolicy::Other,
                "batch" => SchedPolicy::Batch,
                "idle" => SchedPolicy::Idle,
                "ext" => SchedPolicy::Ext,
                "fifo" | "rr" => return Err(bad("give a priority: fifo:N or rr:N, N in 1..99")),
                _ => return Err(bad("expected other, batch, idle, fifo:N, rr:N or ext")),
            },
            Some(("fifo", p)) => SchedPolicy::Fifo(rt(p)?),
            Some(("rr", p)) => SchedPolicy::Rr(rt(p)?),
            Some(_) => return Err(bad("expected other, batch, idle, fifo:N, rr:N or ext")),
        })
    }
}

/// NUMA nodes a memory policy names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeSet {
    /// Every node with memory.
    All,
    /// These nodes.
    List(Vec<u32>),
}

/// A NUMA memory policy (`set_mempolicy(2)`), applied to the whole worker before it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MemPolicy {
    /// `MPOL_BIND`: only these nodes.
    Bind(NodeSet),
    /// `MPOL_INTERLEAVE`: pages round-robin over these nodes.
    Interleave(NodeSet),
    /// `MPOL_PREFERRED`: this node first.
    Preferred(u32),
    /// `MPOL_LOCAL`: the node of the CPU that touches the page.
    Local,
}

impl std::str::FromStr for MemPolicy {
    type Err = PlacementError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: String| PlacementError::invalid("mem", s, &why);
        let nodes = |n: &str| -> Result<NodeSet, PlacementError> {
            if n.trim() == "all" {
                return Ok(NodeSet::All);
            }
            parse_cpu_list(n).map(NodeSet::List).map_err(|e| bad(e.to_string()))
        };
        let expected = || bad("expected bind:NODES, interleave:NODES, preferred:N or local (NODES: 0-1, all)".into());
        Ok(match s.trim().split_once(':') {
            None if s.trim() == "local" => MemPolicy::Local,
            None if s.trim() == "interleave" => MemPolicy::Interleave(NodeSet::All),
            None => return Err(expected()),
            Some(("bind", n)) => MemPolicy::Bind(nodes(n)?),
            Some(("interleave", n)) => MemPolicy::Interleave(nodes(n)?),
            Some(("preferred", n)) => {
                MemPolicy::Preferred(n.trim().parse().map_err(|_| bad("preferred takes one node".into()))?)
            }
            Some(_) => return Err(expected()),
        })
    }
}

impl std::fmt::Display for MemPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nodes = |n: &NodeSet| match n {
            NodeSet::All => "all".to_string(),
            NodeSet::List(l) => format_cpu_list(l),
        };
        match self {
            MemPolicy::Bind(n) => write!(f, "bind:{}", nodes(n)),
            MemPolicy::Interleave(n) => write!(f, "interleave:{}", nodes(n)),
            MemPolicy::Preferred(n) => write!(f, "preferred:{n}"),
            MemPolicy::Local => f.write_str("local"),
        }
    }
}

/// Where a workload's threads and memory go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// CPUs the process may run on (`sched_setaffinity`), also the llama.cpp threadpool mask.
    pub cpus: Option<CpuPreset>,
    /// llama.cpp's strict placement: each compute thread pinned to one CPU of `cpus`.
    pub strict: bool,
    /// Scheduling policy.
    pub policy: Option<SchedPolicy>,
    /// Nice value, -20..19 (meaningful for other and batch).
    pub nice: Option<i32>,
    /// NUMA memory policy; the model is then loaded without mmap.
    pub mem: Option<MemPolicy>,
}

/// A sched_ext scheduler an arm attaches for its trials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulerSpec {
    /// The program and its arguments (`["scx_lavd", "--performance"]`).
    pub command: Vec<String>,
    /// Partial-switch mode (`-p`): only SCHED_EXT tasks run on it, so the worker gets that
    /// policy. The command must be given the scheduler's own partial flag too.
    pub partial: bool,
    /// Longest wait for `enabled` after spawning.
    #[serde(with = "crate::serde_duration::secs")]
    pub attach_timeout: Duration,
    /// Longest wait for `disabled` after SIGINT before SIGKILL.
    #[serde(with = "crate::serde_duration::secs")]
    pub detach_timeout: Duration,
}

/// How long the scx project's own harness waits for each transition.
pub const DEFAULT_SCX_TIMEOUT: Duration = Duration::from_secs(6);

impl SchedulerSpec {
    /// A full-switch scheduler run as `command`, with the default timeouts.
    pub fn new(command: impl IntoIterator<Item = impl Into<String>>) -> Self {
        SchedulerSpec {
            command: command.into_iter().map(Into::into).collect(),
            partial: false,
            attach_timeout: DEFAULT_SCX_TIMEOUT,
            detach_timeout: DEFAULT_SCX_TIMEOUT,
        }
    }
}

/// One arm of a comparison: a name, a placement and, optionally, a sched_ext scheduler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arm {
    /// Its name in tables and JSON.
    pub name: String,
    /// Threads and memory.
    pub placement: Placement,
    /// The sched_ext scheduler attached for its trials; `None`: the kernel's own scheduler,
    /// with sched_ext asserted disabled throughout.
    pub scheduler: Option<SchedulerSpec>,
}

impl Arm {
    /// An arm with the kernel's scheduler and no placement.
    pub fn new(name: impl Into<String>) -> Self {
        Arm { name: name.into(), placement: Placement::default(), scheduler: None }
    }

    /// Checks the combination (what needs the machine is checked by [`Arm::resolve`]).
    ///
    /// # Errors
    /// [`PlacementError::Arm`]: sched_ext with a FIFO/RR priority, SCHED_EXT without a
    /// partial-switch scheduler, strict without CPUs, a nice value outside -20..19.
    pub fn check(&self) -> Result<(), PlacementError> {
        let bad = |reason: &str| Err(PlacementError::Arm { arm: self.name.clone(), reason: reason.into() });
        if self.name.is_empty() || self.name.contains(char::is_whitespace) {
            return bad("an arm's name is one word");
        }
        let p = &self.placement;
        match (&self.scheduler, p.policy) {
            (Some(_), Some(SchedPolicy::Fifo(_) | SchedPolicy::Rr(_))) => {
                return bad(
                    "sched_ext never schedules SCHED_FIFO/SCHED_RR tasks: the arm would not measure its scheduler",
                )
            }
            (Some(s), Some(SchedPolicy::Other | SchedPolicy::Batch | SchedPolicy::Idle)) if s.partial => {
                return bad(
                    "a partial-switch scheduler only runs SCHED_EXT tasks: leave the policy out (it is set to ext)",
                )
            }
            (Some(s), Some(SchedPolicy::Ext)) if !s.partial => {
                return bad(
                    "policy=ext is for partial-switch schedulers: add partial=1 (and the scheduler's own -p flag)",
                )
            }
            (None, Some(SchedPolicy::Ext)) => {
                return bad(
                    "policy=ext needs a partial-switch sched_ext scheduler in the arm (scheduler=..., partial=1)",
                )
            }
            _ => {}
        }
        if let Some(s) = &self.scheduler {
            if s.command.is_empty() || s.command[0].is_empty() {
                return bad("scheduler= names no program");
            }
        }
        if p.strict && p.cpus.is_none() {
            return bad("strict=1 pins threads to the arm's CPUs: give cpus=...");
        }
        if p.nice.is_some_and(|n| !(-20..=19).contains(&n)) {
            return bad("nice is -20..19");
        }
        Ok(())
    }

    /// The policy the worker is given: the arm's, or SCHED_EXT for a partial-switch scheduler.
    pub fn effective_policy(&self) -> Option<SchedPolicy> {
        match &self.scheduler {
            Some(s) if s.partial => Some(SchedPolicy::Ext),
            _ => self.placement.policy,
        }
    }

    /// What the arm asks of this machine, explicit: CPU list, policy, nice, memory nodes.
    ///
    /// # Errors
    /// [`PlacementError`] for a combination [`Arm::check`] refuses, a CPU preset or node the
    /// machine lacks.
    pub fn resolve(&self, topo: &Topology) -> Result<Requested, PlacementError> {
        self.check()?;
        let arm = |reason: String| PlacementError::Arm { arm: self.name.clone(), reason };
        let cpus = match &self.placement.cpus {
            Some(preset) => Some(preset.resolve(topo).map_err(|e| arm(e.to_string()))?),
            None => None,
        };
        let node_ids: Vec<u32> = topo.nodes.iter().map(|n| n.id).collect();
        let known = |nodes: &[u32]| -> Result<(), PlacementError> {
            match nodes.iter().find(|n| !node_ids.contains(n)) {
                Some(n) => Err(arm(format!("no NUMA node {n} (nodes: {})", format_cpu_list(&node_ids)))),
                None => Ok(()),
            }
        };
        let with_memory: Vec<u32> = topo.nodes.iter().filter(|n| n.memory_bytes != Some(0)).map(|n| n.id).collect();
        let set = |n: &NodeSet| -> Result<Vec<u32>, PlacementError> {
            let nodes = match n {
                NodeSet::All => with_memory.clone(),
                NodeSet::List(l) => l.clone(),
            };
            if nodes.is_empty() {
                return Err(arm("no NUMA node with memory is known (is /sys/devices/system/node there?)".into()));
            }
            known(&nodes)?;
            Ok(nodes)
        };
        let mem = match &self.placement.mem {
            None => None,
            Some(MemPolicy::Bind(n)) => Some(RequestedMem { mode: MemMode::Bind, nodes: set(n)? }),
            Some(MemPolicy::Interleave(n)) => Some(RequestedMem { mode: MemMode::Interleave, nodes: set(n)? }),
            Some(MemPolicy::Preferred(n)) => {
                known(&[*n])?;
                Some(RequestedMem { mode: MemMode::Preferred, nodes: vec![*n] })
            }
            Some(MemPolicy::Local) => Some(RequestedMem { mode: MemMode::Local, nodes: Vec::new() }),
        };
        Ok(Requested {
            cpus,
            strict: self.placement.strict,
            policy: self.effective_policy(),
            nice: self.placement.nice,
            mem,
            scheduler: self.scheduler.as_ref().map(|s| s.command.join(" ")),
            partial: self.scheduler.as_ref().is_some_and(|s| s.partial),
        })
    }
}

/// A memory policy's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemMode {
    /// `MPOL_BIND`.
    Bind,
    /// `MPOL_INTERLEAVE`.
    Interleave,
    /// `MPOL_PREFERRED`.
    Preferred,
    /// `MPOL_LOCAL`.
    Local,
}

/// A memory policy with its nodes explicit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestedMem {
    /// The mode.
    pub mode: MemMode,
    /// Its nodes (none for `local`).
    pub nodes: Vec<u32>,
}

impl RequestedMem {
    /// The policy as `/proc/<pid>/numa_maps` prints it: `bind:0-1`, `interleave:0`,
    /// `prefer:0`, `local`.
    pub fn numa_maps_name(&self) -> String {
        let nodes = format_cpu_list(&self.nodes);
        match self.mode {
            MemMode::Bind => format!("bind:{nodes}"),
            MemMode::Interleave => format!("interleave:{nodes}"),
            MemMode::Preferred => format!("prefer:{nodes}"),
            MemMode::Local => "local".into(),
        }
    }
}

/// What an arm asks of this machine, with every preset resolved: the `requested` of results.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requested {
    /// CPUs, sorted; `None`: not restricted.
    pub cpus: Option<Vec<u32>>,
    /// Strict pinning of compute threads.
    pub strict: bool,
    /// Policy (SCHED_EXT for a partial-switch arm).
    pub policy: Option<SchedPolicy>,
    /// Nice value.
    pub nice: Option<i32>,
    /// Memory policy.
    pub mem: Option<RequestedMem>,
    /// The sched_ext scheduler's command line.
    pub scheduler: Option<String>,
    /// Partial-switch mode.
    pub partial: bool,
}

impl Requested {
    /// `cpus_allowed` as a CPU list (`0-1`), when restricted.
    pub fn cpus_list(&self) -> Option<String> {
        self.cpus.as_deref().map(format_cpu_list)
    }

    /// Whether anything must be applied to the worker process.
    pub fn applies_anything(&self) -> bool {
        self.cpus.is_some() || self.policy.is_some() || self.nice.is_some() || self.mem.is_some()
    }
}

/// Parses one `--arm`: `NAME` or `NAME:key=value,key=value`.
///
/// Keys: `cpus` (a preset: `cores`, `threads`, `llc:N`, `node:N`, `spread:N`, or a CPU list,
/// whose commas are kept), `strict` (0/1), `policy` (`other`, `batch`, `idle`, `fifo:N`,
/// `rr:N`, `ext`), `nice`, `mem` (`bind:NODES`, `interleave:NODES|all`, `preferred:N`,
/// `local`), `scheduler` (a command line, split at spaces), `partial` (0/1),
/// `attach_timeout` / `detach_timeout` (seconds).
///
/// # Errors
/// [`PlacementError`] for an unknown key or a value that does not parse.
pub fn parse_arm(s: &str) -> Result<Arm, PlacementError> {
    let (name, rest) = match s.split_once(':') {
        Some((n, r)) => (n.trim(), r),
        None => (s.trim(), ""),
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    for piece in rest.split(',').filter(|p| !p.trim().is_empty()) {
        match piece.split_once('=') {
            Some((k, v)) => pairs.push((k.trim().to_string(), v.trim().to_string())),
            // `cpus=0,2` and `mem=bind:0,1`: a piece without '=' continues the previous value.
            None => match pairs.last_mut() {
                Some((_, v)) => {
                    v.push(',');
                    v.push_str(piece.trim());
                }
                None => return Err(PlacementError::invalid("arm", s, "expected NAME:key=value,...")),
            },
        }
    }
    let mut raw = RawArm { name: name.to_string(), ..RawArm::default() };
    for (k, v) in pairs {
        let flag = |v: &str| match v {
            "1" | "true" | "yes" => Ok(true),
            "0" | "false" | "no" => Ok(false),
            _ => Err(PlacementError::invalid(&k, v, "expected 0 or 1")),
        };
        let secs = |v: &str| v.parse::<f64>().map_err(|_| PlacementError::invalid(&k, v, "expected seconds"));
        match k.as_str() {
            "cpus" => raw.cpus = Some(v),
            "strict" => raw.strict = flag(&v)?,
            "policy" => raw.policy = Some(v),
            "nice" => raw.nice = Some(v.parse().map_err(|_| PlacementError::invalid("nice", &v, "expected -20..19"))?),
            "mem" => raw.mem = Some(v),
            "scheduler" => raw.scheduler = Some(Command::Line(unquote(&v).to_string())),
            "partial" => raw.partial = flag(&v)?,
            "attach_timeout" => raw.attach_timeout = Some(secs(&v)?),
            "detach_timeout" => raw.detach_timeout = Some(secs(&v)?),
            _ => {
                return Err(PlacementError::invalid(
                    "arm",
                    s,
                    &format!("unknown key {k:?} (cpus, strict, policy, nice, mem, scheduler, partial, attach_timeout, detach_timeout)"),
                ))
            }
        }
    }
    raw.into_arm()
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|x| x.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

/// Splits a command line at whitespace; single or double quotes group words (no escapes, no
/// expansion: the words go to exec as they are).
///
/// # Errors
/// An unclosed quote.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(q) = quote {
        return Err(format!("unclosed {q} in {line:?}"));
    }
    words.extend(word);
    Ok(words)
}

/// A scheduler command: a line split at spaces (quotes group words), or an explicit argv.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Command {
    Line(String),
    Argv(Vec<String>),
}

/// An arm as written, in either syntax.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArm {
    name: String,
    cpus: Option<String>,
    #[serde(default)]
    strict: bool,
    policy: Option<String>,
    nice: Option<i32>,
    mem: Option<String>,
    scheduler: Option<Command>,
    #[serde(default)]
    partial: bool,
    attach_timeout: Option<f64>,
    detach_timeout: Option<f64>,
}

impl RawArm {
    fn into_arm(self) -> Result<Arm, PlacementError> {
        let timeout = |key: &str, v: Option<f64>| -> Result<Duration, PlacementError> {
            match v {
                None => Ok(DEFAULT_SCX_TIMEOUT),
                Some(s) => Duration::try_from_secs_f64(s)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| PlacementError::invalid(key, &s.to_string(), "expected seconds > 0")),
            }
        };
        let cpus = match self.cpus {
            Some(c) => Some(c.parse::<CpuPreset>().map_err(|e| PlacementError::invalid("cpus", &c, &e.to_string()))?),
            None => None,
        };
        let scheduler = match self.scheduler {
            None if self.partial => {
                return Err(PlacementError::Arm { arm: self.name, reason: "partial=1 needs scheduler=...".into() })
            }
            None => None,
            Some(cmd) => Some(SchedulerSpec {
                command: match cmd {
                    Command::Line(l) => {
                        split_words(&l).map_err(|reason| PlacementError::invalid("scheduler", &l, &reason))?
                    }
                    Command::Argv(v) => v,
                },
                partial: self.partial,
                attach_timeout: timeout("attach_timeout", self.attach_timeout)?,
                detach_timeout: timeout("detach_timeout", self.detach_timeout)?,
            }),
        };
        let arm = Arm {
            name: self.name,
            placement: Placement {
                cpus,
                strict: self.strict,
                policy: self.policy.as_deref().map(str::parse).transpose()?,
                nice: self.nice,
                mem: self.mem.as_deref().map(str::parse).transpose()?,
            },
            scheduler,
        };
        arm.check()?;
        Ok(arm)
    }
}

#[cfg(feature = "placement")]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ArmsFile {
    arm: Vec<RawArm>,
}

/// Parses an arms file: TOML with one `[[arm]]` table per arm, its keys those of
/// [`parse_arm`] (`scheduler` a string or an array of arguments).
///
/// ```toml
/// [[arm]]
/// name = "default"
///
/// [[arm]]
/// name = "pinned"
/// cpus = "0-1"
/// strict = true
///
/// [[arm]]
/// name = "lavd"
/// scheduler = ["scx_lavd", "--performance"]
/// ```
///
/// # Errors
/// [`PlacementError::ArmsFile`] for TOML that does not parse or an unknown key;
/// [`PlacementError`] for an arm's invalid value.
#[cfg(feature = "placement")]
pub fn parse_arms_file(text: &str) -> Result<Vec<Arm>, PlacementError> {
    let file: ArmsFile = toml::from_str(text).map_err(|e| PlacementError::ArmsFile(e.to_string()))?;
    file.arm.into_iter().map(RawArm::into_arm).collect()
}
