//! The machine's CPU and memory topology, read from sysfs: CPUs, physical cores and their SMT
//! siblings, last-level-cache groups, NUMA nodes with their distances and memory, isolated and
//! nohz_full CPUs, SMT control and frequency governors.
//!
//! Everything is read under a root directory ([`Topology::read_from`]), `/` on a live system,
//! so tests and other machines' captures can use a fake tree. Missing files read as unknown,
//! not as errors: containers and VMs hide parts of sysfs. [`CpuPreset`] turns placements by
//! name (`cores`, `llc:0`, `node:1`, `spread:4`, `0-3`) into this machine's CPU lists.

mod cpulist;
mod preset;

pub use cpulist::{format_cpu_list, parse_cpu_list};
pub use preset::CpuPreset;

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Errors reading the topology or resolving a placement.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// A CPU list that is not in the kernel's syntax.
    #[error("invalid CPU list {list:?}: {reason}")]
    CpuList {
        /// The list as given.
        list: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No online CPU could be read: not Linux, or sysfs is not mounted under the root.
    #[error("no CPU topology under {}: sysfs (/sys/devices/system/cpu) is needed, on Linux", root.display())]
    NoSysfs {
        /// The root read.
        root: PathBuf,
    },
    /// A placement preset this machine cannot satisfy, or that does not parse.
    #[error("placement {preset:?}: {reason}")]
    Preset {
        /// The preset as given.
        preset: String,
        /// Why.
        reason: String,
    },
}

/// One online CPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cpu {
    /// Its number.
    pub id: u32,
    /// Its core, unique within the package.
    pub core_id: u32,
    /// Its package (socket).
    pub package_id: u32,
    /// The CPUs of its core, itself included (SMT siblings).
    pub thread_siblings: Vec<u32>,
    /// The CPUs that share its last-level cache, itself included (empty when unknown).
    pub llc_cpus: Vec<u32>,
    /// Its NUMA node, when the machine reports nodes.
    pub node: Option<u32>,
    /// Its cpufreq governor (`performance`, `powersave`, ...), when it has cpufreq.
    pub governor: Option<String>,
}

/// One NUMA node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumaNode {
    /// Its number.
    pub id: u32,
    /// Its CPUs.
    pub cpus: Vec<u32>,
    /// Distances to every node, in node order (10 = local), as the firmware's SLIT gives them.
    pub distances: Vec<u32>,
    /// Its memory, bytes (`MemTotal` of its meminfo).
    pub memory_bytes: Option<u64>,
}

/// The machine's topology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    /// Online CPUs, by number.
    pub cpus: Vec<Cpu>,
    /// NUMA nodes with memory or CPUs, by number (empty when the kernel reports none).
    pub nodes: Vec<NumaNode>,
    /// CPUs isolated from the scheduler (`isolcpus=`).
    pub isolated: Vec<u32>,
    /// CPUs running tickless (`nohz_full=`).
    pub nohz_full: Vec<u32>,
    /// SMT control: `on`, `off`, `forceoff`, `notsupported`, `notimplemented`; `None` unknown.
    pub smt: Option<String>,
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn read_u32(path: &Path) -> Option<u32> {
    read(path)?.parse().ok()
}

fn read_list(path: &Path) -> Option<Vec<u32>> {
    parse_cpu_list(&read(path)?).ok()
}

impl Topology {
    /// This machine's topology (sysfs under `/`).
    ///
    /// # Errors
    /// [`TopologyError::NoSysfs`] where sysfs cannot be read (not Linux).
    pub fn read() -> Result<Self, TopologyError> {
        Self::read_from(Path::new("/"))
    }

    /// The topology in the sysfs tree under `root` (`root/sys/devices/system/...`).
    ///
    /// # Errors
    /// [`TopologyError::NoSysfs`] when no online CPU can be read there.
    pub fn read_from(root: &Path) -> Result<Self, TopologyError> {
        let sys = root.join("sys/devices/system");
        let cpu_dir = sys.join("cpu");
        let online = read_list(&cpu_dir.join("online")).filter(|l| !l.is_empty());
        let online = online.ok_or_else(|| TopologyError::NoSysfs { root: root.to_path_buf() })?;
        let nodes = read_nodes(&sys.join("node"));
        let node_of: BTreeMap<u32, u32> = nodes.iter().flat_map(|n| n.cpus.iter().map(move |&c| (c, n.id))).collect();
        let cpus = online
            .iter()
            .map(|&id| {
                let dir = cpu_dir.join(format!("cpu{id}"));
                let topo = dir.join("topology");
                Cpu {
                    id,
                    core_id: read_u32(&topo.join("core_id")).unwrap_or(id),
                    package_id: read_u32(&topo.join("physical_package_id")).unwrap_or(0),
                    thread_siblings: read_list(&topo.join("thread_siblings_list")).unwrap_or_else(|| vec![id]),
                    llc_cpus: read_llc(&dir.join("cache")),
                    node: node_of.get(&id).copied(),
                    governor: read(&dir.join("cpufreq/scaling_governor")),
                }
            })
            .collect();
        Ok(Topology {
            cpus,
            nodes,
            isolated: read_list(&cpu_dir.join("isolated")).unwrap_or_default(),
            nohz_full: read_list(&cpu_dir.join("nohz_full")).unwrap_or_default(),
            smt: read(&cpu_dir.join("smt/control")),
        })
    }

    /// The online CPU `id`.
    pub fn cpu(&self, id: u32) -> Option<&Cpu> {
        self.cpus.iter().find(|c| c.id == id)
    }

    /// The online CPUs in the kernel's list syntax.
    pub fn online_list(&self) -> String {
        format_cpu_list(&self.cpus.iter().map(|c| c.id).collect::<Vec<_>>())
    }

    pub(crate) fn node_ids(&self) -> String {
        format_cpu_list(&self.nodes.iter().map(|n| n.id).collect::<Vec<_>>())
    }

    /// Physical cores, each as its online SMT siblings (sorted), in order of their first CPU.
    pub fn physical_cores(&self) -> Vec<Vec<u32>> {
        let online: BTreeSet<u32> = self.cpus.iter().map(|c| c.id).collect();
        let cores: BTreeSet<Vec<u32>> = self
            .cpus
            .iter()
            .map(|c| {
                let mut s: Vec<u32> = c.thread_siblings.iter().copied().filter(|x| online.contains(x)).collect();
                if s.is_empty() {
                    s.push(c.id);
                }
                s.sort_unstable();
                s
            })
            .collect();
        cores.into_iter().collect()
    }

    /// Last-level-cache groups, each its online CPUs, in order of their first CPU. Without
    /// cache information every CPU of a package is taken to share one.
    pub fn llc_groups(&self) -> Vec<Vec<u32>> {
        let online: BTreeSet<u32> = self.cpus.iter().map(|c| c.id).collect();
        let groups: BTreeSet<Vec<u32>> = self
            .cpus
            .iter()
            .map(|c| {
                if c.llc_cpus.is_empty() {
                    self.cpus.iter().filter(|x| x.package_id == c.package_id).map(|x| x.id).collect()
                } else {
                    c.llc_cpus.iter().copied().filter(|x| online.contains(x)).collect()
                }
            })
            .collect();
        groups.into_iter().collect()
    }

    /// Every online CPU in the order a spread placement takes them: one per physical core
    /// first, round-robin over packages, then nodes, then cores; then the second siblings, and
    /// so on.
    pub fn spread_order(&self) -> Vec<u32> {
        let cores = self.physical_cores();
        let key = |cpu: u32| self.cpu(cpu).map_or((0, 0), |c| (c.package_id, c.node.unwrap_or(0)));
        // Cores grouped by (package, node), then dealt out one group at a time.
        let mut groups: BTreeMap<(u32, u32), Vec<&Vec<u32>>> = BTreeMap::new();
        for core in &cores {
            groups.entry(key(core[0])).or_default().push(core);
        }
        let mut dealt: Vec<&Vec<u32>> = Vec::with_capacity(cores.len());
        let longest = groups.values().map(Vec::len).max().unwrap_or(0);
        for i in 0..longest {
            dealt.extend(groups.values().filter_map(|g| g.get(i).copied()));
        }
        let depth = cores.iter().map(Vec::len).max().unwrap_or(0);
        (0..depth).flat_map(|level| dealt.iter().filter_map(move |core| core.get(level).copied())).collect()
    }
}

fn read_nodes(node_dir: &Path) -> Vec<NumaNode> {
    let Some(ids) = read_list(&node_dir.join("online")) else { return Vec::new() };
    ids.into_iter()
        .map(|id| {
            let dir = node_dir.join(format!("node{id}"));
            let distances = read(&dir.join("distance"))
                .map(|d| d.split_whitespace().filter_map(|x| x.parse().ok()).collect())
                .unwrap_or_default();
            // "Node 0 MemTotal:       15427320 kB"
            let memory_bytes = read(&dir.join("meminfo")).and_then(|m| {
                let line = m.lines().find(|l| l.contains("MemTotal:"))?;
                let kb: u64 = line.split_whitespace().rev().nth(1)?.parse().ok()?;
                Some(kb * 1024)
            });
            NumaNode { id, cpus: read_list(&dir.join("cpulist")).unwrap_or_default(), distances, memory_bytes }
        })
        .collect()
}

/// The CPUs sharing the highest-level data or unified cache.
fn read_llc(cache_dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(cache_dir) else { return Vec::new() };
    let mut best: Option<(u32, Vec<u32>)> = None;
    for e in entries.flatten() {
        let p = e.path();
        if !e.file_name().to_string_lossy().starts_with("index") {
            continue;
        }
        if read(&p.join("type")).as_deref() == Some("Instruction") {
            continue;
        }
        let (Some(level), Some(cpus)) = (read_u32(&p.join("level")), read_list(&p.join("shared_cpu_list"))) else {
            continue;
        };
        if best.as_ref().map_or(true, |(l, _)| level > *l) {
            best = Some((level, cpus));
        }
    }
    best.map(|(_, c)| c).unwrap_or_default()
}

#[cfg(test)]
mod tests;
