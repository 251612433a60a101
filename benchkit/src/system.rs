//! What machine a result was measured on.

use crate::devices::DeviceType;

/// System description carried by every result record.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SystemInfo {
    /// CPU model (llama-bench `cpu_info`).
    pub cpu_info: String,
    /// GPU models, comma separated (llama-bench `gpu_info`); empty without GPU.
    pub gpu_info: String,
    /// Logical CPUs.
    pub n_cpus: usize,
    /// Physical cores (what llama-bench uses as its default thread count).
    pub n_physical_cores: usize,
    /// Total RAM in bytes.
    pub memory_bytes: u64,
    /// Operating system and architecture, e.g. `linux x86_64`.
    pub os: String,
    /// Kernel release, where known.
    pub kernel: Option<String>,
    /// Host name.
    pub hostname: Option<String>,
    /// Active sched_ext scheduler, if one is loaded (`/sys/kernel/sched_ext`).
    pub sched_ext: Option<String>,
    /// llama.cpp's `llama_print_system_info()` (CPU features ggml uses).
    pub llama_system_info: String,
    /// CPUs, cores, caches, NUMA nodes, isolated CPUs, SMT and governors, from sysfs; `None`
    /// where sysfs cannot be read (and in results written before it was recorded).
    #[serde(default)]
    pub topology: Option<crate::topology::Topology>,
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// CPUs this process may run on (`std::thread::available_parallelism`: the affinity mask and
/// cgroup quota), at least 1.
pub fn n_cpus_available() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// CPUs this machine has (configured, not only online), for validating CPU masks.
pub fn n_cpus_configured() -> usize {
    // "0-3" or "0,2-5"
    read("/sys/devices/system/cpu/possible")
        .and_then(|s| {
            s.split(',').filter_map(|r| r.rsplit('-').next()?.trim().parse::<usize>().ok()).max().map(|m| m + 1)
        })
        .unwrap_or_else(n_cpus_available)
}

/// Physical cores (unique core ids), falling back to logical CPUs.
pub fn n_physical_cores() -> usize {
    let logical = n_cpus_available();
    let Some(cpuinfo) = read("/proc/cpuinfo") else { return logical };
    let mut cores = std::collections::BTreeSet::new();
    let (mut phys, mut core) = (None::<String>, None::<String>);
    for line in cpuinfo.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            if let (Some(p), Some(c)) = (phys.take(), core.take()) {
                cores.insert((p, c));
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            match k.trim() {
                "physical id" => phys = Some(v.trim().to_string()),
                "core id" => core = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    if cores.is_empty() {
        logical
    } else {
        cores.len().min(logical)
    }
}

/// Default thread count: physical cores, as llama-bench.
pub fn default_threads() -> usize {
    n_physical_cores().max(1)
}

impl SystemInfo {
    /// Collects the description of this machine.
    pub fn collect() -> Self {
        let devices = crate::devices::list();
        let cpu_from_proc = read("/proc/cpuinfo").and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        });
        let cpu_info = devices
            .iter()
            .find(|d| d.kind == DeviceType::Cpu)
            .map(|d| d.description.clone())
            .filter(|d| !d.is_empty())
            .or(cpu_from_proc)
            .unwrap_or_default();
        let gpu_info = devices
            .iter()
            .filter(|d| matches!(d.kind, DeviceType::Gpu | DeviceType::IntegratedGpu))
            .map(|d| d.description.clone())
            .collect::<Vec<_>>()
            .join(", ");
        let memory_bytes = read("/proc/meminfo")
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            })
            .map_or(0, |kb| kb * 1024);
        let sched_ext = read("/sys/kernel/sched_ext/state")
            .filter(|s| s == "enabled")
            .and_then(|_| read("/sys/kernel/sched_ext/root/ops"));
        // llama_print_system_info rebuilds a function-static std::string: calls must not overlap.
        static SYSTEM_INFO_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let guard = SYSTEM_INFO_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: returns a pointer to a static NUL-terminated string, copied before the lock
        // is released.
        let llama_system_info = unsafe { crate::util::cstr_to_string(llama_sys::llama_print_system_info()) };
        drop(guard);
        SystemInfo {
            cpu_info,
            gpu_info,
            n_cpus: n_cpus_available(),
            n_physical_cores: n_physical_cores(),
            memory_bytes,
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            kernel: read("/proc/sys/kernel/osrelease"),
            hostname: read("/proc/sys/kernel/hostname"),
            sched_ext,
            llama_system_info: llama_system_info.trim().to_string(),
            topology: crate::topology::Topology::read().ok(),
        }
    }
}
