//! The whole machine: per-CPU utilization (/proc/stat), frequency (cpufreq), temperature
//! (hwmon) and thermal throttling events (Intel's thermal_throttle counters).

use super::{Probe, Roots, Sample};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The machine at one instant; utilization is over the time since the previous sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineSample {
    /// Busy share of all CPUs, percent.
    pub busy_pct: f64,
    /// Busy share of each CPU (in /proc/stat's order, [`MachineProbe::cpus`]), percent.
    pub cpu_busy_pct: Vec<f64>,
    /// The CPU ids of `cpu_busy_pct`.
    #[serde(skip)]
    pub cpu_ids: std::sync::Arc<[u32]>,
    /// Current frequency of each CPU with cpufreq, MHz.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freq_mhz: Option<Vec<f64>>,
    /// Hottest hwmon sensor, °C.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temp_c: Option<f64>,
    /// Thermal throttling events so far, summed over CPUs (core and package counters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle_events: Option<u64>,
}

/// Busy and total jiffies of one /proc/stat line.
#[derive(Debug, Clone, Copy, Default)]
struct Jiffies {
    busy: u64,
    total: u64,
}

/// Samples machine-wide CPU state.
pub struct MachineProbe {
    proc_stat: PathBuf,
    cpu_dir: PathBuf,
    /// CPU ids in /proc/stat's order.
    cpus: std::sync::Arc<[u32]>,
    last: Option<(Jiffies, Vec<Jiffies>)>,
    freq_files: Vec<PathBuf>,
    temp_files: Vec<PathBuf>,
    throttle_files: Vec<PathBuf>,
    reasons: Vec<(&'static str, String)>,
}

impl MachineProbe {
    /// A probe reading under `roots`.
    pub fn new(roots: &Roots) -> Self {
        MachineProbe {
            proc_stat: roots.proc.join("stat"),
            cpu_dir: roots.sys.join("devices/system/cpu"),
            cpus: std::sync::Arc::from([]),
            last: None,
            freq_files: Vec::new(),
            temp_files: Vec::new(),
            throttle_files: Vec::new(),
            reasons: Vec::new(),
        }
        .with_hwmon(&roots.sys.join("class/hwmon"))
    }

    fn with_hwmon(mut self, hwmon: &Path) -> Self {
        let mut files: Vec<PathBuf> = read_dir_sorted(hwmon)
            .into_iter()
            .flat_map(|d| read_dir_sorted(&d))
            .filter(|f| {
                f.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("temp") && n.ends_with("_input"))
            })
            .collect();
        files.sort();
        if files.is_empty() {
            self.reasons.push(("temperature", format!("no hwmon temperature sensors under {}", hwmon.display())));
        }
        self.temp_files = files;
        self
    }

    /// CPU ids, in the order of [`MachineSample::cpu_busy_pct`].
    pub fn cpus(&self) -> &[u32] {
        &self.cpus
    }

    fn read_stat(&self) -> Result<(Jiffies, Vec<(u32, Jiffies)>), String> {
        let text =
            std::fs::read_to_string(&self.proc_stat).map_err(|e| format!("{}: {e}", self.proc_stat.display()))?;
        let mut all = None;
        let mut per = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("cpu") else { continue };
            let (id, fields) = rest.split_once(' ').unwrap_or((rest, ""));
            let v: Vec<u64> = fields.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            if v.len() < 4 {
                continue;
            }
            // user nice system idle iowait irq softirq steal (guest time is inside user).
            let idle = v[3] + v.get(4).copied().unwrap_or(0);
            let total: u64 = v.iter().take(8).sum();
            let j = Jiffies { busy: total - idle, total };
            if id.is_empty() {
                all = Some(j);
            } else if let Ok(n) = id.parse() {
                per.push((n, j));
            }
        }
        Ok((all.ok_or_else(|| format!("{}: no aggregate cpu line", self.proc_stat.display()))?, per))
    }
}

fn pct(now: Jiffies, then: Jiffies) -> f64 {
    let total = now.total.saturating_sub(then.total);
    if total == 0 {
        return 0.0;
    }
    100.0 * now.busy.saturating_sub(then.busy) as f64 / total as f64
}

fn read_dir_sorted(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    v.sort();
    v
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

impl Probe for MachineProbe {
    fn name(&self) -> &'static str {
        "machine"
    }

    fn start(&mut self) -> Result<(), String> {
        let (all, per) = self.read_stat()?;
        self.cpus = per.iter().map(|(id, _)| *id).collect();
        self.last = Some((all, per.into_iter().map(|(_, j)| j).collect()));
        let cpu = |id: &u32, rel: &str| self.cpu_dir.join(format!("cpu{id}")).join(rel);
        self.freq_files = self.cpus.iter().map(|id| cpu(id, "cpufreq/scaling_cur_freq")).collect();
        if !self.freq_files.iter().all(|f| read_u64(f).is_some()) {
            self.freq_files.clear();
            self.reasons.push(("cpu_freq", format!("no cpufreq scaling_cur_freq under {}", self.cpu_dir.display())));
        }
        self.throttle_files = self
            .cpus
            .iter()
            .flat_map(|id| {
                [cpu(id, "thermal_throttle/core_throttle_count"), cpu(id, "thermal_throttle/package_throttle_count")]
            })
            .filter(|f| read_u64(f).is_some())
            .collect();
        if self.throttle_files.is_empty() {
            self.reasons.push((
                "throttle",
                format!(
                    "no thermal_throttle counters under {} (Intel CPUs on bare metal have them)",
                    self.cpu_dir.display()
                ),
            ));
        }
        Ok(())
    }

    fn sample(&mut self, out: &mut Sample) {
        let Ok((all, per)) = self.read_stat() else { return };
        let (last_all, last_per) = self.last.take().unwrap_or((all, Vec::new()));
        let per: Vec<Jiffies> = per.into_iter().map(|(_, j)| j).collect();
        let cpu_busy_pct =
            per.iter().enumerate().map(|(i, j)| pct(*j, last_per.get(i).copied().unwrap_or(*j))).collect();
        let busy_pct = pct(all, last_all);
        self.last = Some((all, per));
        let freq_mhz = (!self.freq_files.is_empty())
            .then(|| self.freq_files.iter().map(|f| read_u64(f).map_or(f64::NAN, |khz| khz as f64 / 1000.0)).collect());
        let temp_c = self.temp_files.iter().filter_map(|f| read_u64(f)).max().map(|m| m as f64 / 1000.0);
        let throttle_events =
            (!self.throttle_files.is_empty()).then(|| self.throttle_files.iter().filter_map(|f| read_u64(f)).sum());
        out.machine = Some(MachineSample {
            busy_pct,
            cpu_busy_pct,
            cpu_ids: self.cpus.clone(),
            freq_mhz,
            temp_c,
            throttle_events,
        });
    }

    fn unavailable(&self) -> Vec<(&'static str, String)> {
        self.reasons.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utilization_frequency_temperature_and_throttling_from_fake_roots() {
        let dir = tempfile::tempdir().unwrap();
        let roots = Roots { proc: dir.path().join("proc"), sys: dir.path().join("sys") };
        std::fs::create_dir_all(&roots.proc).unwrap();
        let stat = |a: [u64; 2], b: [u64; 2]| {
            // busy in `user`, idle in `idle`
            let line = |name: &str, busy: u64, idle: u64| format!("{name} {busy} 0 0 {idle} 0 0 0 0 0 0\n");
            let text = line("cpu ", a[0] + b[0], a[1] + b[1]) + &line("cpu0", a[0], a[1]) + &line("cpu1", b[0], b[1]);
            std::fs::write(roots.proc.join("stat"), text).unwrap();
        };
        for (cpu, khz) in [(0, 2_000_000), (1, 3_000_000)] {
            let d = roots.sys.join(format!("devices/system/cpu/cpu{cpu}"));
            std::fs::create_dir_all(d.join("cpufreq")).unwrap();
            std::fs::write(d.join("cpufreq/scaling_cur_freq"), format!("{khz}\n")).unwrap();
            std::fs::create_dir_all(d.join("thermal_throttle")).unwrap();
            std::fs::write(d.join("thermal_throttle/core_throttle_count"), "2\n").unwrap();
        }
        let hw = roots.sys.join("class/hwmon/hwmon0");
        std::fs::create_dir_all(&hw).unwrap();
        std::fs::write(hw.join("temp1_input"), "45000\n").unwrap();
        std::fs::write(hw.join("temp2_input"), "61500\n").unwrap();
        stat([100, 100], [100, 100]);
        let mut p = MachineProbe::new(&roots);
        p.start().unwrap();
        assert_eq!(p.cpus(), [0, 1]);
        assert!(p.unavailable().is_empty(), "{:?}", p.unavailable());
        stat([175, 125], [100, 200]); // cpu0 75% busy, cpu1 idle
        let mut s = Sample::default();
        p.sample(&mut s);
        let m = s.machine.unwrap();
        assert_eq!(m.cpu_busy_pct, [75.0, 0.0]);
        assert!((m.busy_pct - 37.5).abs() < 1e-9);
        assert_eq!(m.freq_mhz.unwrap(), [2000.0, 3000.0]);
        assert_eq!((m.temp_c, m.throttle_events), (Some(61.5), Some(4)));
    }

    #[test]
    fn a_machine_without_cpufreq_hwmon_or_counters_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let roots = Roots { proc: dir.path().join("proc"), sys: dir.path().join("sys") };
        std::fs::create_dir_all(&roots.proc).unwrap();
        std::fs::write(roots.proc.join("stat"), "cpu  1 0 0 1\ncpu0 1 0 0 1\n").unwrap();
        let mut p = MachineProbe::new(&roots);
        p.start().unwrap();
        let parts: Vec<&str> = p.unavailable().iter().map(|(k, _)| *k).collect();
        assert_eq!(parts, ["temperature", "cpu_freq", "throttle"]);
        let mut s = Sample::default();
        p.sample(&mut s);
        let m = s.machine.unwrap();
        assert!(m.freq_mhz.is_none() && m.temp_c.is_none() && m.throttle_events.is_none());
        assert!(MachineProbe::new(&Roots { proc: dir.path().join("none"), ..roots }).start().is_err());
    }
}
