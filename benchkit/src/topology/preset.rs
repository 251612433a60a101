//! Thread placements by name, turned into explicit CPU lists for one machine.

use super::{format_cpu_list, parse_cpu_list, Topology, TopologyError};

/// A placement preset. [`CpuPreset::resolve`] turns it into this machine's CPUs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "preset", content = "arg", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CpuPreset {
    /// One CPU per physical core (the first SMT sibling of each): `cores`.
    Cores,
    /// Every online CPU, SMT siblings included: `threads`.
    Threads,
    /// The CPUs sharing last-level cache group N (groups in order of their first CPU): `llc:N`.
    Llc(usize),
    /// The CPUs of NUMA node N: `node:N`.
    Node(u32),
    /// N CPUs spread over the packages, nodes and cores, one per core first: `spread:N`.
    Spread(usize),
    /// An explicit list, in the kernel's syntax: `0-3,8`.
    List(Vec<u32>),
}

impl std::str::FromStr for CpuPreset {
    type Err = TopologyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || TopologyError::Preset {
            preset: s.to_string(),
            reason: "expected cores, threads, llc:N, node:N, spread:N or a CPU list like 0-3".into(),
        };
        let arg = |a: &str| a.trim().parse::<usize>().map_err(|_| bad());
        Ok(match s.trim().split_once(':') {
            None if s.trim() == "cores" => CpuPreset::Cores,
            None if s.trim() == "threads" || s.trim() == "smt" => CpuPreset::Threads,
            None => CpuPreset::List(parse_cpu_list(s)?),
            Some(("llc", n)) => CpuPreset::Llc(arg(n)?),
            Some(("node", n)) => CpuPreset::Node(u32::try_from(arg(n)?).map_err(|_| bad())?),
            Some(("spread", n)) => CpuPreset::Spread(arg(n)?),
            Some(_) => return Err(bad()),
        })
    }
}

impl std::fmt::Display for CpuPreset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CpuPreset::Cores => f.write_str("cores"),
            CpuPreset::Threads => f.write_str("threads"),
            CpuPreset::Llc(n) => write!(f, "llc:{n}"),
            CpuPreset::Node(n) => write!(f, "node:{n}"),
            CpuPreset::Spread(n) => write!(f, "spread:{n}"),
            CpuPreset::List(l) => f.write_str(&format_cpu_list(l)),
        }
    }
}

impl CpuPreset {
    /// This machine's CPUs for the preset, sorted.
    ///
    /// # Errors
    /// [`TopologyError::Preset`] for a group or node the machine lacks, a spread wider than its
    /// CPUs, or a list naming an offline CPU.
    pub fn resolve(&self, topo: &Topology) -> Result<Vec<u32>, TopologyError> {
        let bad = |reason: String| TopologyError::Preset { preset: self.to_string(), reason };
        let mut cpus = match self {
            CpuPreset::Cores => topo.physical_cores().iter().map(|core| core[0]).collect(),
            CpuPreset::Threads => topo.cpus.iter().map(|c| c.id).collect(),
            CpuPreset::Llc(n) => {
                let groups = topo.llc_groups();
                groups.get(*n).cloned().ok_or_else(|| bad(format!("this machine has {} LLC group(s)", groups.len())))?
            }
            CpuPreset::Node(n) => {
                let node = topo.nodes.iter().find(|x| x.id == *n);
                let node = node.ok_or_else(|| bad(format!("no NUMA node {n} (nodes: {})", topo.node_ids())))?;
                node.cpus.clone()
            }
            CpuPreset::Spread(n) => {
                let order = topo.spread_order();
                if *n == 0 || *n > order.len() {
                    return Err(bad(format!("1 to {} CPUs are online", order.len())));
                }
                order[..*n].to_vec()
            }
            CpuPreset::List(l) => {
                if let Some(c) = l.iter().find(|c| topo.cpu(**c).is_none()) {
                    return Err(bad(format!("CPU {c} is not online (online: {})", topo.online_list())));
                }
                l.clone()
            }
        };
        if cpus.is_empty() {
            return Err(bad("no CPU".into()));
        }
        cpus.sort_unstable();
        Ok(cpus)
    }
}
