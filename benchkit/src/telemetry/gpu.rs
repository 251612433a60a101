//! NVIDIA GPUs through NVML (`nvml-wrapper`, which loads libnvidia-ml when the probe starts:
//! a build or a machine without the driver only gets a reason).

use super::{Probe, Sample};
use serde::{Deserialize, Serialize};

/// One GPU at one instant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuSample {
    /// NVML index.
    pub index: u32,
    /// Product name.
    pub name: String,
    /// Board power, mW.
    pub power_mw: Option<u32>,
    /// Energy counter (Volta and later), mJ since the probe started.
    pub energy_mj: Option<u64>,
    /// Kernel-busy share of the last sample period, percent.
    pub util_pct: Option<u32>,
    /// Memory-busy share, percent.
    pub mem_util_pct: Option<u32>,
    /// Memory in use, bytes.
    pub mem_used_bytes: Option<u64>,
    /// SM clock, MHz.
    pub sm_clock_mhz: Option<u32>,
    /// Memory clock, MHz.
    pub mem_clock_mhz: Option<u32>,
    /// Die temperature, °C.
    pub temp_c: Option<u32>,
    /// NVML's clock throttle reasons, as its bit mask.
    pub throttle_reasons: Option<u64>,
    /// The measured process's SM share, percent, where the driver reports it.
    pub process_sm_pct: Option<u32>,
}

/// NVML's throttle reason bits, named.
pub fn throttle_reason_names(bits: u64) -> Vec<String> {
    #[cfg(feature = "nvml")]
    {
        nvml_wrapper::bitmasks::device::ThrottleReasons::from_bits_truncate(bits)
            .iter_names()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect()
    }
    #[cfg(not(feature = "nvml"))]
    {
        if bits == 0 {
            Vec::new()
        } else {
            vec![format!("0x{bits:x}")]
        }
    }
}

/// Samples every GPU NVML sees, and the measured process's share of each.
pub struct GpuProbe {
    pid: u32,
    lib: Option<std::ffi::OsString>,
    #[cfg(feature = "nvml")]
    state: Option<nvml::State>,
}

impl GpuProbe {
    /// A probe for process `pid`; `lib` overrides where libnvidia-ml is looked for.
    pub fn new(pid: u32, lib: Option<std::ffi::OsString>) -> Self {
        GpuProbe {
            pid,
            lib,
            #[cfg(feature = "nvml")]
            state: None,
        }
    }
}

impl Probe for GpuProbe {
    fn name(&self) -> &'static str {
        "gpu"
    }

    #[cfg(feature = "nvml")]
    fn start(&mut self) -> Result<(), String> {
        self.state = Some(nvml::State::init(self.lib.as_deref(), self.pid)?);
        Ok(())
    }

    #[cfg(not(feature = "nvml"))]
    fn start(&mut self) -> Result<(), String> {
        let _ = (&self.lib, self.pid);
        Err("benchkit was built without its `nvml` feature".into())
    }

    fn sample(&mut self, out: &mut Sample) {
        #[cfg(feature = "nvml")]
        if let Some(s) = self.state.as_mut() {
            out.gpu = Some(s.sample());
        }
        #[cfg(not(feature = "nvml"))]
        let _ = out;
    }
}

#[cfg(feature = "nvml")]
mod nvml {
    use super::GpuSample;
    use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
    use nvml_wrapper::Nvml;

    pub(super) struct State {
        nvml: Nvml,
        pid: u32,
        devices: Vec<(u32, String, Option<u64>)>,
        last_seen_us: Option<u64>,
    }

    impl State {
        pub(super) fn init(lib: Option<&std::ffi::OsStr>, pid: u32) -> Result<State, String> {
            // Driver installs without the development package have only the versioned name.
            let names: Vec<&std::ffi::OsStr> = match lib {
                Some(l) => vec![l],
                None => vec!["libnvidia-ml.so".as_ref(), "libnvidia-ml.so.1".as_ref()],
            };
            let mut last = String::new();
            for name in names {
                match Nvml::builder().lib_path(name).init() {
                    Ok(nvml) => return State::with(nvml, pid),
                    Err(e) => last = format!("NVML unavailable ({}): {e}", name.to_string_lossy()),
                }
            }
            Err(last)
        }

        fn with(nvml: Nvml, pid: u32) -> Result<State, String> {
            let n = nvml.device_count().map_err(|e| format!("NVML device count: {e}"))?;
            if n == 0 {
                return Err("NVML sees no GPU".into());
            }
            let mut devices = Vec::new();
            for i in 0..n {
                let d = nvml.device_by_index(i).map_err(|e| format!("NVML device {i}: {e}"))?;
                devices.push((i, d.name().unwrap_or_default(), d.total_energy_consumption().ok()));
            }
            Ok(State { nvml, pid, devices, last_seen_us: None })
        }

        pub(super) fn sample(&mut self) -> Vec<GpuSample> {
            let mut out = Vec::with_capacity(self.devices.len());
            let mut newest = self.last_seen_us;
            for (index, name, energy0) in &self.devices {
                let Ok(d) = self.nvml.device_by_index(*index) else { continue };
                let util = d.utilization_rates().ok();
                let process_sm_pct = d.process_utilization_stats(self.last_seen_us).ok().and_then(|v| {
                    newest = v.iter().map(|s| s.timestamp).chain(newest).max();
                    v.iter().filter(|s| s.pid == self.pid).map(|s| s.sm_util).max()
                });
                out.push(GpuSample {
                    index: *index,
                    name: name.clone(),
                    power_mw: d.power_usage().ok(),
                    energy_mj: energy0.and_then(|e0| d.total_energy_consumption().ok().map(|e| e.saturating_sub(e0))),
                    util_pct: util.as_ref().map(|u| u.gpu),
                    mem_util_pct: util.as_ref().map(|u| u.memory),
                    mem_used_bytes: d.memory_info().ok().map(|m| m.used),
                    sm_clock_mhz: d.clock_info(Clock::SM).ok(),
                    mem_clock_mhz: d.clock_info(Clock::Memory).ok(),
                    temp_c: d.temperature(TemperatureSensor::Gpu).ok(),
                    throttle_reasons: d.current_throttle_reasons().ok().map(|r| r.bits()),
                    process_sm_pct,
                });
            }
            self.last_seen_us = newest;
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_driver_is_a_reason_not_an_error() {
        let mut p = GpuProbe::new(std::process::id(), Some("/nonexistent/libnvidia-ml.so".into()));
        let reason = p.start().unwrap_err();
        assert!(reason.contains("NVML unavailable") || reason.contains("nvml"), "{reason}");
        let mut s = Sample::default();
        p.sample(&mut s);
        assert!(s.gpu.is_none());
    }

    #[test]
    #[cfg(feature = "nvml")]
    fn throttle_bits_have_names() {
        assert_eq!(throttle_reason_names(0x4), ["sw_power_cap"]);
        assert!(throttle_reason_names(0).is_empty());
    }
}
