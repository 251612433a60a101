//! A window of samples, summarised: what a record carries.

use super::{throttle_reason_names, Sample};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A measurement, or why there is none. Serialised as the value itself, or as
/// `{"unavailable": "<reason>"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reading<T> {
    /// Not measured here.
    Unavailable {
        /// Why.
        unavailable: String,
    },
    /// Measured.
    Measured(T),
}

impl<T> Reading<T> {
    /// Not measured, because `reason`.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Reading::Unavailable { unavailable: reason.into() }
    }

    /// The measurement.
    pub fn value(&self) -> Option<&T> {
        match self {
            Reading::Measured(v) => Some(v),
            Reading::Unavailable { .. } => None,
        }
    }

    /// The reason, when not measured.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Reading::Unavailable { unavailable } => Some(unavailable),
            Reading::Measured(_) => None,
        }
    }

    fn from_result(r: Result<T, String>) -> Self {
        r.map_or_else(Reading::unavailable, Reading::Measured)
    }
}

/// Which span of the trial the summary covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// The phase it starts at: `repetition` (bench: the timed repetitions, warmup excluded),
    /// `warmup`, or `start` (the whole trial, model load included).
    pub from: String,
    /// Start, ns since the Unix epoch.
    pub start_unix_ns: u64,
    /// Length, s.
    pub duration_s: f64,
    /// Samples in it (phase boundaries included).
    pub samples: usize,
    /// The sampling interval, ms.
    pub interval_ms: u64,
}

/// The measured process's CPU use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuSummary {
    /// The process.
    pub pid: u32,
    /// User CPU time, s.
    pub user_s: f64,
    /// System CPU time, s.
    pub system_s: f64,
    /// Average CPUs kept busy: (user + system) / duration.
    pub utilization: f64,
    /// Voluntary context switches (waits: I/O, locks, a spinning threadpool yielding).
    pub voluntary_ctxt_switches: u64,
    /// Involuntary context switches (preempted by the scheduler).
    pub nonvoluntary_ctxt_switches: u64,
    /// All context switches per second.
    pub ctxt_switches_per_s: f64,
    /// Most threads alive at once.
    pub max_threads: u64,
}

/// The measured process's memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemorySummary {
    /// Peak resident set size (VmHWM: since the process started), bytes.
    pub peak_rss_bytes: u64,
    /// Resident set size at the end, bytes.
    pub rss_bytes: u64,
    /// Minor page faults in the window.
    pub minor_faults: u64,
    /// Major page faults in the window.
    pub major_faults: u64,
}

/// Average, least and most.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Range {
    /// Mean.
    pub avg: f64,
    /// Least.
    pub min: f64,
    /// Most.
    pub max: f64,
}

/// The machine while the window ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineSummary {
    /// Mean busy share of all CPUs, percent.
    pub busy_pct: f64,
    /// Mean busy share of each CPU, percent (CPU id -> share).
    pub cpu_busy_pct: BTreeMap<String, f64>,
    /// CPU frequency over all CPUs and samples, MHz.
    pub freq_mhz: Reading<Range>,
    /// Hottest sensor reading, °C.
    pub temp_c_max: Reading<f64>,
    /// Thermal throttling events in the window (0: the CPU did not throttle).
    pub throttle_events: Reading<u64>,
}

/// Energy of one kind of device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnergyFigures {
    /// J in the window.
    pub joules: f64,
    /// Mean power, W.
    pub avg_power_w: f64,
    /// Highest power between two samples (CPU) or sampled (GPU), W.
    pub max_power_w: Option<f64>,
    /// J per token, when the record counts tokens.
    pub j_per_token: Option<f64>,
    /// J per domain (RAPL zone, GPU index).
    pub domains: BTreeMap<String, f64>,
    /// `rapl`, `nvml_energy_counter` (the driver's counter, before/after) or
    /// `nvml_power_integral` (sampled power, where the counter is missing).
    pub source: String,
}

/// Energy in the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnergySummary {
    /// CPU packages (and DRAM).
    pub cpu: Reading<EnergyFigures>,
    /// GPUs.
    pub gpu: Reading<EnergyFigures>,
    /// CPU + GPU, J (what was measured of the two).
    pub joules: f64,
    /// The record's tokens (bench: prompt tokens for pp, generated for tg, over every
    /// repetition; replay: output tokens; perplexity: evaluated tokens).
    pub tokens: Option<u64>,
    /// `joules / tokens`.
    pub j_per_token: Option<f64>,
}

/// One GPU in the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuDeviceSummary {
    /// NVML index.
    pub index: u32,
    /// Product name.
    pub name: String,
    /// J in the window.
    pub energy_j: Option<f64>,
    /// `nvml_energy_counter` or `nvml_power_integral`.
    pub energy_source: Option<String>,
    /// Mean power, W.
    pub avg_power_w: Option<f64>,
    /// Highest sampled power, W.
    pub max_power_w: Option<f64>,
    /// Mean kernel-busy share, percent.
    pub avg_util_pct: Option<f64>,
    /// Mean memory-busy share, percent.
    pub avg_mem_util_pct: Option<f64>,
    /// Most memory in use, bytes.
    pub max_mem_used_bytes: Option<u64>,
    /// Highest SM clock, MHz.
    pub max_sm_clock_mhz: Option<u32>,
    /// Highest memory clock, MHz.
    pub max_mem_clock_mhz: Option<u32>,
    /// Hottest, °C.
    pub max_temp_c: Option<u32>,
    /// Every throttle reason seen (`gpu_idle`, `sw_power_cap`, `hw_slowdown`, ...).
    pub throttle_reasons: Vec<String>,
    /// Mean SM share of the measured process, percent, where the driver reports it.
    pub avg_process_sm_pct: Option<f64>,
}

/// GPUs in the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuSummary {
    /// One per GPU.
    pub devices: Vec<GpuDeviceSummary>,
}

/// What a record carries: the summary of its window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Telemetry {
    /// The span summarised; `None` when nothing was sampled.
    pub window: Option<Window>,
    /// The process's CPU time, utilization and context switches.
    pub cpu: Reading<CpuSummary>,
    /// Its memory.
    pub memory: Reading<MemorySummary>,
    /// The machine's CPUs.
    #[serde(default = "not_measured")]
    pub machine: Reading<MachineSummary>,
    /// Energy, CPU and GPU.
    pub energy: Reading<EnergySummary>,
    /// GPUs.
    pub gpu: Reading<GpuSummary>,
}

fn not_measured<T>() -> Reading<T> {
    Reading::unavailable("not measured")
}

impl Default for Telemetry {
    /// Nothing measured (a point that never ran).
    fn default() -> Self {
        Telemetry::unavailable("not measured")
    }
}

impl Telemetry {
    /// Every part unavailable for `reason`.
    pub fn unavailable(reason: &str) -> Self {
        Telemetry {
            window: None,
            cpu: Reading::unavailable(reason),
            memory: Reading::unavailable(reason),
            machine: Reading::unavailable(reason),
            energy: Reading::unavailable(reason),
            gpu: Reading::unavailable(reason),
        }
    }

    /// Sets the token count and the J per token figures.
    pub fn per_token(&mut self, tokens: u64) {
        if let Reading::Measured(e) = &mut self.energy {
            e.tokens = Some(tokens);
            let per = |j: f64| (tokens > 0).then(|| j / tokens as f64);
            e.j_per_token = per(e.joules);
            for f in [&mut e.cpu, &mut e.gpu] {
                if let Reading::Measured(f) = f {
                    f.j_per_token = per(f.joules);
                }
            }
        }
    }

    /// Summarises `samples` (the window, in time order). `reasons`: parts that cannot be
    /// measured here (`process`, `machine`, `energy.cpu`, `gpu`, `cpu_freq`, ...).
    pub fn summarize(
        samples: &[Sample],
        from: &str,
        pid: u32,
        interval_ms: u64,
        reasons: &BTreeMap<&'static str, String>,
    ) -> Telemetry {
        let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
            return Telemetry::unavailable("no sample in the window");
        };
        let duration = last.t_s - first.t_s;
        let window = Window {
            from: from.to_string(),
            start_unix_ns: first.unix_ns,
            duration_s: duration,
            samples: samples.len(),
            interval_ms,
        };
        let reason = |part: &str, default: &str| reasons.get(part).cloned().unwrap_or_else(|| default.to_string());
        let procs: Vec<_> = samples.iter().filter_map(|s| s.process.as_ref()).collect();
        let (cpu, memory) = match (procs.first(), procs.last()) {
            (Some(a), Some(b)) => {
                let cpu_s = (b.user_s - a.user_s) + (b.system_s - a.system_s);
                let v = b.voluntary_ctxt_switches.saturating_sub(a.voluntary_ctxt_switches);
                let nv = b.nonvoluntary_ctxt_switches.saturating_sub(a.nonvoluntary_ctxt_switches);
                let cpu = CpuSummary {
                    pid,
                    user_s: b.user_s - a.user_s,
                    system_s: b.system_s - a.system_s,
                    utilization: ratio(cpu_s, duration),
                    voluntary_ctxt_switches: v,
                    nonvoluntary_ctxt_switches: nv,
                    ctxt_switches_per_s: ratio((v + nv) as f64, duration),
                    max_threads: procs.iter().map(|p| p.threads).max().unwrap_or(0),
                };
                let memory = MemorySummary {
                    peak_rss_bytes: procs.iter().map(|p| p.hwm_bytes.max(p.rss_bytes)).max().unwrap_or(0),
                    rss_bytes: b.rss_bytes,
                    minor_faults: b.minor_faults.saturating_sub(a.minor_faults),
                    major_faults: b.major_faults.saturating_sub(a.major_faults),
                };
                (Reading::Measured(cpu), Reading::Measured(memory))
            }
            _ => {
                let r = reason("process", "the process was gone before it could be sampled");
                (Reading::unavailable(r.clone()), Reading::unavailable(r))
            }
        };
        let machine = match samples.iter().any(|s| s.machine.is_some()) {
            true => Reading::Measured(machine_summary(samples, reasons)),
            false => Reading::unavailable(reason("machine", "no machine sample")),
        };
        let cpu_energy = Reading::from_result(
            rapl_energy(samples, interval_ms).ok_or_else(|| reason("energy.cpu", "no RAPL sample in the window")),
        );
        let gpu_devices = gpu_devices(samples);
        let gpu = match (&gpu_devices, reasons.get("gpu")) {
            (_, Some(r)) => Reading::unavailable(r.clone()),
            (d, None) if d.is_empty() => Reading::unavailable("no GPU sample in the window"),
            (d, None) => Reading::Measured(GpuSummary { devices: d.clone() }),
        };
        let gpu_energy = match &gpu {
            Reading::Unavailable { unavailable } => Reading::unavailable(unavailable.clone()),
            Reading::Measured(g) => gpu_energy(g, duration),
        };
        let energy = match (cpu_energy.value(), gpu_energy.value()) {
            (None, None) => Reading::unavailable(format!(
                "cpu: {}; gpu: {}",
                cpu_energy.reason().unwrap_or_default(),
                gpu_energy.reason().unwrap_or_default()
            )),
            (c, g) => {
                let joules = c.map_or(0.0, |c| c.joules) + g.map_or(0.0, |g| g.joules);
                Reading::Measured(EnergySummary {
                    cpu: cpu_energy,
                    gpu: gpu_energy,
                    joules,
                    tokens: None,
                    j_per_token: None,
                })
            }
        };
        Telemetry { window: Some(window), cpu, memory, machine, energy, gpu }
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (n, sum) = v.fold((0usize, 0.0), |(n, s), x| (n + 1, s + x));
    (n > 0).then(|| sum / n as f64)
}

fn machine_summary(samples: &[Sample], reasons: &BTreeMap<&'static str, String>) -> MachineSummary {
    // Utilization is since the previous sample: the window's first sample covers time before it.
    let ms: Vec<_> = samples.iter().skip(1).filter_map(|s| s.machine.as_ref()).collect();
    let all: Vec<_> = samples.iter().filter_map(|s| s.machine.as_ref()).collect();
    let busy_pct = mean(ms.iter().map(|m| m.busy_pct)).unwrap_or(0.0);
    let n_cpu = ms.iter().map(|m| m.cpu_busy_pct.len()).max().unwrap_or(0);
    let ids = ms.iter().map(|m| &m.cpu_ids).find(|ids| ids.len() == n_cpu);
    let cpu_busy_pct = (0..n_cpu)
        .map(|i| {
            let id = ids.map_or(i as u32, |ids| ids[i]);
            (id.to_string(), mean(ms.iter().filter_map(|m| m.cpu_busy_pct.get(i).copied())).unwrap_or(0.0))
        })
        .collect();
    let freqs: Vec<f64> =
        all.iter().filter_map(|m| m.freq_mhz.as_ref()).flatten().copied().filter(|f| f.is_finite()).collect();
    let why = |part: &str| reasons.get(part).cloned().unwrap_or_else(|| format!("no {part} reading"));
    let freq_mhz = match mean(freqs.iter().copied()) {
        Some(avg) => Reading::Measured(Range {
            avg,
            min: freqs.iter().copied().fold(f64::INFINITY, f64::min),
            max: freqs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }),
        None => Reading::unavailable(why("cpu_freq")),
    };
    let temp_c_max = match all.iter().filter_map(|m| m.temp_c).reduce(f64::max) {
        Some(t) => Reading::Measured(t),
        None => Reading::unavailable(why("temperature")),
    };
    let throttles: Vec<u64> = all.iter().filter_map(|m| m.throttle_events).collect();
    let throttle_events = match (throttles.first(), throttles.last()) {
        (Some(a), Some(b)) => Reading::Measured(b.saturating_sub(*a)),
        _ => Reading::unavailable(why("throttle")),
    };
    MachineSummary { busy_pct, cpu_busy_pct, freq_mhz, temp_c_max, throttle_events }
}

fn rapl_energy(samples: &[Sample], interval_ms: u64) -> Option<EnergyFigures> {
    let with: Vec<(f64, &BTreeMap<String, f64>)> =
        samples.iter().filter_map(|s| s.rapl_j.as_ref().map(|r| (s.t_s, r))).collect();
    let (&(t0, a), &(t1, b)) = (with.first()?, with.last()?);
    let domains: BTreeMap<String, f64> =
        b.iter().map(|(k, v)| (k.clone(), v - a.get(k).copied().unwrap_or(0.0))).collect();
    let joules = domains.values().sum();
    let total = |m: &BTreeMap<String, f64>| m.values().sum::<f64>();
    // Between phase-boundary samples a few ms apart, power is mostly rounding: pairs shorter
    // than half an interval are left out of the maximum.
    let min_dt = interval_ms as f64 / 2000.0;
    let max_power_w = with
        .windows(2)
        .filter(|w| w[1].0 - w[0].0 >= min_dt)
        .map(|w| (total(w[1].1) - total(w[0].1)) / (w[1].0 - w[0].0))
        .reduce(f64::max);
    Some(EnergyFigures {
        joules,
        avg_power_w: ratio(joules, t1 - t0),
        max_power_w,
        j_per_token: None,
        domains,
        source: "rapl".into(),
    })
}

fn gpu_devices(samples: &[Sample]) -> Vec<GpuDeviceSummary> {
    let mut by_index: BTreeMap<u32, Vec<(f64, &super::GpuSample)>> = BTreeMap::new();
    for s in samples {
        for g in s.gpu.iter().flatten() {
            by_index.entry(g.index).or_default().push((s.t_s, g));
        }
    }
    by_index
        .into_iter()
        .map(|(index, v)| {
            let f64s =
                |f: fn(&super::GpuSample) -> Option<u32>| mean(v.iter().filter_map(|(_, g)| f(g)).map(f64::from));
            let max32 = |f: fn(&super::GpuSample) -> Option<u32>| v.iter().filter_map(|(_, g)| f(g)).max();
            let counter: Vec<u64> = v.iter().filter_map(|(_, g)| g.energy_mj).collect();
            let (energy_j, energy_source) = match (counter.first(), counter.last()) {
                (Some(a), Some(b)) if counter.len() >= 2 => {
                    (Some(b.saturating_sub(*a) as f64 / 1000.0), Some("nvml_energy_counter"))
                }
                _ => {
                    let j = integrate_power(&v);
                    (j, j.map(|_| "nvml_power_integral"))
                }
            };
            let bits = v.iter().filter_map(|(_, g)| g.throttle_reasons).fold(0u64, |a, b| a | b);
            let reasons: BTreeSet<String> = throttle_reason_names(bits).into_iter().collect();
            GpuDeviceSummary {
                index,
                name: v[0].1.name.clone(),
                energy_j,
                energy_source: energy_source.map(String::from),
                avg_power_w: f64s(|g| g.power_mw).map(|mw| mw / 1000.0),
                max_power_w: max32(|g| g.power_mw).map(|mw| f64::from(mw) / 1000.0),
                avg_util_pct: f64s(|g| g.util_pct),
                avg_mem_util_pct: f64s(|g| g.mem_util_pct),
                max_mem_used_bytes: v.iter().filter_map(|(_, g)| g.mem_used_bytes).max(),
                max_sm_clock_mhz: max32(|g| g.sm_clock_mhz),
                max_mem_clock_mhz: max32(|g| g.mem_clock_mhz),
                max_temp_c: max32(|g| g.temp_c),
                throttle_reasons: reasons.into_iter().collect(),
                avg_process_sm_pct: f64s(|g| g.process_sm_pct),
            }
        })
        .collect()
}

/// Trapezoids over sampled power, J (GPUs without the energy counter).
fn integrate_power(v: &[(f64, &super::GpuSample)]) -> Option<f64> {
    let p: Vec<(f64, f64)> = v.iter().filter_map(|(t, g)| g.power_mw.map(|mw| (*t, f64::from(mw) / 1000.0))).collect();
    (p.len() >= 2).then(|| p.windows(2).map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0).sum())
}

fn gpu_energy(g: &GpuSummary, duration: f64) -> Reading<EnergyFigures> {
    let with: Vec<_> = g.devices.iter().filter_map(|d| d.energy_j.map(|j| (d, j))).collect();
    if with.is_empty() {
        return Reading::unavailable("no GPU reports power or energy");
    }
    let joules = with.iter().map(|(_, j)| j).sum();
    let counter = with.iter().all(|(d, _)| d.energy_source.as_deref() == Some("nvml_energy_counter"));
    Reading::Measured(EnergyFigures {
        joules,
        avg_power_w: ratio(joules, duration),
        max_power_w: with.iter().filter_map(|(d, _)| d.max_power_w).reduce(f64::max),
        j_per_token: None,
        domains: with.iter().map(|(d, j)| (format!("gpu{}", d.index), *j)).collect(),
        source: if counter { "nvml_energy_counter" } else { "nvml_power_integral" }.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{GpuSample, MachineSample, ProcessSample};
    use super::*;

    fn sample(t: f64, cpu_s: f64, vcs: u64, rapl: f64, gpu_mj: Option<u64>) -> Sample {
        Sample {
            t_s: t,
            unix_ns: (t * 1e9) as u64,
            process: Some(ProcessSample {
                user_s: cpu_s,
                system_s: 0.0,
                rss_bytes: 100 + (t * 10.0) as u64,
                hwm_bytes: 150,
                threads: 3,
                voluntary_ctxt_switches: vcs,
                nonvoluntary_ctxt_switches: vcs / 2,
                minor_faults: vcs,
                ..ProcessSample::default()
            }),
            machine: Some(MachineSample { busy_pct: 50.0, cpu_busy_pct: vec![100.0, 0.0], ..Default::default() }),
            rapl_j: Some([("package-0".to_string(), rapl)].into()),
            gpu: gpu_mj.map(|e| {
                vec![GpuSample {
                    index: 0,
                    name: "H200".into(),
                    power_mw: Some(300_000),
                    energy_mj: Some(e),
                    util_pct: Some(90),
                    throttle_reasons: Some(0x4),
                    ..Default::default()
                }]
            }),
        }
    }

    #[test]
    fn summarises_deltas_rates_energy_and_per_token() {
        let s = [
            sample(0.0, 1.0, 10, 5.0, Some(0)),
            sample(1.0, 2.5, 30, 45.0, Some(300_000)),
            sample(2.0, 4.0, 50, 65.0, Some(600_000)),
        ];
        let mut t = Telemetry::summarize(&s, "repetition", 9, 100, &BTreeMap::new());
        t.per_token(100);
        let cpu = t.cpu.value().unwrap();
        assert_eq!(
            (cpu.user_s, cpu.utilization, cpu.voluntary_ctxt_switches, cpu.nonvoluntary_ctxt_switches),
            (3.0, 1.5, 40, 20)
        );
        assert_eq!(cpu.ctxt_switches_per_s, 30.0);
        let mem = t.memory.value().unwrap();
        assert_eq!((mem.peak_rss_bytes, mem.minor_faults), (150, 40));
        let e = t.energy.value().unwrap();
        let c = e.cpu.value().unwrap();
        assert_eq!((c.joules, c.avg_power_w, c.max_power_w), (60.0, 30.0, Some(40.0)));
        assert_eq!(c.j_per_token, Some(0.6));
        let g = e.gpu.value().unwrap();
        assert_eq!((g.joules, g.source.as_str()), (600.0, "nvml_energy_counter"));
        assert_eq!((e.joules, e.tokens, e.j_per_token), (660.0, Some(100), Some(6.6)));
        let dev = &t.gpu.value().unwrap().devices[0];
        assert_eq!((dev.avg_power_w, dev.throttle_reasons.clone()), (Some(300.0), vec!["sw_power_cap".to_string()]));
        let m = t.machine.value().unwrap();
        assert_eq!(m.cpu_busy_pct["0"], 100.0);
        assert!(m.freq_mhz.reason().is_some());
        assert_eq!(t.window.as_ref().unwrap().duration_s, 2.0);
    }

    #[test]
    fn unavailable_parts_carry_their_reasons_and_round_trip() {
        let mut s = [sample(0.0, 1.0, 1, 0.0, None), sample(1.0, 2.0, 2, 0.0, None)];
        for x in &mut s {
            x.rapl_j = None;
        }
        let reasons: BTreeMap<_, _> =
            [("energy.cpu", "no powercap".to_string()), ("gpu", "NVML unavailable".to_string())].into();
        let t = Telemetry::summarize(&s, "start", 1, 100, &reasons);
        assert_eq!(t.gpu.reason(), Some("NVML unavailable"));
        assert_eq!(t.energy.reason(), Some("cpu: no powercap; gpu: NVML unavailable"));
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["gpu"], serde_json::json!({"unavailable": "NVML unavailable"}));
        assert!(json["cpu"]["user_s"].as_f64().unwrap() > 0.0);
        let back: Telemetry = serde_json::from_value(json).unwrap();
        assert_eq!(back, t);
        let gpu_power_only = GpuSample { index: 1, name: "x".into(), power_mw: Some(100_000), ..Default::default() };
        let v = [(0.0, &gpu_power_only), (2.0, &gpu_power_only)];
        assert_eq!(integrate_power(&v), Some(200.0));
    }
}
