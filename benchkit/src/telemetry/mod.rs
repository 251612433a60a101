//! Telemetry: what the machine did while a trial ran, and what it cost.
//!
//! [`Probe`]s read the kernel's and the driver's counters: a process's CPU time, memory, page
//! faults and context switches ([`ProcessProbe`], /proc); the machine's per-CPU utilization,
//! frequency, temperature and throttling ([`MachineProbe`]); CPU package energy ([`RaplProbe`],
//! powercap); NVIDIA GPUs ([`GpuProbe`], NVML loaded at run time). A [`Recorder`] samples them
//! on a thread of its own every [`TelemetryConfig::interval`], and at each phase of a trial,
//! so a window's counters start and end exactly at its phases.
//!
//! The supervisor samples its worker from outside (see [`crate::supervise::TrialConfig`]);
//! in-process runs sample their own process with the same recorder. Each record gets a
//! [`Telemetry`] summary: `cpu`, `memory`, `machine`, `energy` and `gpu`, each either measured
//! or `{"unavailable": "<reason>"}`. Optionally the samples and the phase marks go to a JSONL
//! time series ([`TelemetryConfig::series`]) as they are taken.
//!
//! [`prometheus`] parses a server's `/metrics` (llama-server's `llamacpp:*`, vLLM's `vllm:*`)
//! into counter deltas and gauge series for HTTP replays.

mod gpu;
mod machine;
mod process;
pub mod prometheus;
mod rapl;
mod recorder;
mod summary;

pub use gpu::{throttle_reason_names, GpuProbe, GpuSample};
pub use machine::{MachineProbe, MachineSample};
pub use process::{ProcessProbe, ProcessSample};
pub use rapl::RaplProbe;
pub use recorder::{Recorder, SeriesLine};
pub use summary::{
    CpuSummary, EnergyFigures, EnergySummary, GpuDeviceSummary, GpuSummary, MachineSummary, MemorySummary, Range,
    Reading, Telemetry, Window,
};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Where /proc and /sys are: the real ones, or fake trees in tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roots {
    /// procfs.
    pub proc: PathBuf,
    /// sysfs.
    pub sys: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots { proc: "/proc".into(), sys: "/sys".into() }
    }
}

/// What a recorder samples and how often.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetryConfig {
    /// Sample at all; off, every part of the summary says `telemetry off`.
    pub enabled: bool,
    /// Time between samples (default 100 ms). Phases are sampled on top.
    #[serde(with = "crate::serde_duration::millis")]
    pub interval: Duration,
    /// Append every sample and phase mark to this JSONL file as it is taken.
    pub series: Option<PathBuf>,
    /// Look for GPUs through NVML.
    pub gpu: bool,
    /// libnvidia-ml to load instead of the system's (`BENCHKIT_NVML_LIB`).
    pub nvml_lib: Option<PathBuf>,
    /// /proc and /sys.
    pub roots: Roots,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            enabled: true,
            interval: Duration::from_millis(100),
            series: None,
            gpu: true,
            nvml_lib: std::env::var_os("BENCHKIT_NVML_LIB").filter(|v| !v.is_empty()).map(PathBuf::from),
            roots: Roots::default(),
        }
    }
}

impl TelemetryConfig {
    /// No sampling.
    pub fn off() -> Self {
        TelemetryConfig { enabled: false, ..TelemetryConfig::default() }
    }

    /// The probes for process `pid`.
    pub fn probes(&self, pid: u32) -> Vec<Box<dyn Probe>> {
        let mut p: Vec<Box<dyn Probe>> = vec![
            Box::new(ProcessProbe::new(&self.roots, pid)),
            Box::new(MachineProbe::new(&self.roots)),
            Box::new(RaplProbe::new(&self.roots)),
        ];
        if self.gpu {
            p.push(Box::new(GpuProbe::new(pid, self.nvml_lib.clone().map(Into::into))));
        }
        p
    }
}

/// One source of measurements: started once, sampled many times, stopped.
pub trait Probe: Send {
    /// The part of the summary it feeds: `process`, `machine`, `energy.cpu`, `gpu`.
    fn name(&self) -> &'static str;

    /// Prepares to sample.
    ///
    /// # Errors
    /// Why it cannot measure here (no powercap, no driver, permission denied); the summary
    /// carries the reason.
    fn start(&mut self) -> Result<(), String>;

    /// Fills its part of `out`.
    fn sample(&mut self, out: &mut Sample);

    /// Parts it cannot measure although it started (`cpu_freq`, `temperature`, `throttle`),
    /// with reasons.
    fn unavailable(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// Ends sampling.
    fn stop(&mut self) {}
}

/// Every probe's reading at one instant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the recorder started (monotonic).
    pub t_s: f64,
    /// Wall-clock time, ns since the Unix epoch.
    pub unix_ns: u64,
    /// The measured process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessSample>,
    /// The machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<MachineSample>,
    /// RAPL energy per domain since the probe started, J.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rapl_j: Option<BTreeMap<String, f64>>,
    /// GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<Vec<GpuSample>>,
}
