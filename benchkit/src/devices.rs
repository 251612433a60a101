//! Compute devices registered with ggml (CPU, GPUs, accelerators).

use crate::util::cstr_to_string;
use llama_sys as sys;

/// Kind of device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub enum DeviceType {
    /// The CPU backend.
    Cpu,
    /// A discrete GPU.
    Gpu,
    /// An integrated GPU sharing host memory.
    IntegratedGpu,
    /// An accelerator used alongside the CPU (e.g. BLAS, AMX).
    Accelerator,
    /// Meta device or anything newer than this enum.
    Other,
}

/// One compute device.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Device {
    /// Registry index.
    pub index: usize,
    /// Short name, e.g. `CPU`, `CUDA0` (what `-dev` options take).
    pub name: String,
    /// Human description, e.g. the CPU or GPU model.
    pub description: String,
    /// Device kind.
    pub kind: DeviceType,
    /// Free memory in bytes, as the backend reports it.
    pub memory_free: u64,
    /// Total memory in bytes.
    pub memory_total: u64,
}

pub(crate) fn raw_devices() -> Vec<sys::ggml_backend_dev_t> {
    // SAFETY: registry queries; the returned handles are valid for the process lifetime.
    let n = unsafe { sys::ggml_backend_dev_count() };
    // SAFETY: i < count.
    (0..n).map(|i| unsafe { sys::ggml_backend_dev_get(i) }).filter(|d| !d.is_null()).collect()
}

/// Lists the devices llama.cpp can use.
pub(crate) fn list() -> Vec<Device> {
    raw_devices()
        .into_iter()
        .enumerate()
        .map(|(index, dev)| {
            let (mut free, mut total) = (0usize, 0usize);
            // SAFETY: `dev` is a valid registry handle; out-pointers point to live locals.
            let (name, description, ty) = unsafe {
                sys::ggml_backend_dev_memory(dev, &mut free, &mut total);
                (
                    cstr_to_string(sys::ggml_backend_dev_name(dev)),
                    cstr_to_string(sys::ggml_backend_dev_description(dev)),
                    sys::ggml_backend_dev_type(dev),
                )
            };
            let kind = match ty {
                sys::GGML_BACKEND_DEVICE_TYPE_CPU => DeviceType::Cpu,
                sys::GGML_BACKEND_DEVICE_TYPE_GPU => DeviceType::Gpu,
                sys::GGML_BACKEND_DEVICE_TYPE_IGPU => DeviceType::IntegratedGpu,
                sys::GGML_BACKEND_DEVICE_TYPE_ACCEL => DeviceType::Accelerator,
                _ => DeviceType::Other,
            };
            Device { index, name, description, kind, memory_free: free as u64, memory_total: total as u64 }
        })
        .collect()
}

/// What llama-bench's `--list-devices` prints: every non-CPU device with its memory, or
/// `(none)`.
pub fn listing(devices: &[Device]) -> String {
    const MIB: u64 = 1024 * 1024;
    let mut out = String::from("Available devices:\n");
    let offload: Vec<&Device> = devices.iter().filter(|d| d.kind != DeviceType::Cpu).collect();
    if offload.is_empty() {
        out.push_str("  (none)\n");
    }
    for d in offload {
        out.push_str(&format!(
            "  {}: {} ({} MiB, {} MiB free)\n",
            d.name,
            d.description,
            d.memory_total / MIB,
            d.memory_free / MIB
        ));
    }
    out
}

/// For `--list-devices` on stderr: the GPU backends this binary was built with that found no
/// device, e.g. a CUDA build on a machine without an NVIDIA driver (llama-bench's listing then
/// says only `(none)`). `None` when every compiled-in backend has a device.
pub fn missing_backends_note(backends: &[String], devices: &[Device]) -> Option<String> {
    let missing: Vec<&str> = backends
        .iter()
        .map(String::as_str)
        .filter(|b| *b != "CPU" && *b != "RPC")
        .filter(|b| !devices.iter().any(|d| d.kind != DeviceType::Cpu && d.name.starts_with(b)))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let what = missing.join(", ");
    Some(format!(
        "note: built with {what}, but no {what} device was found (no driver, or no GPU visible to this process); \
         models run on the CPU. `-v` shows why the backend found none."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_is_llama_bench_s() {
        let dev = |name: &str, kind| Device {
            index: 0,
            name: name.into(),
            description: format!("{name} desc"),
            kind,
            memory_free: 3 << 20,
            memory_total: 8 << 20,
        };
        assert_eq!(listing(&[dev("CPU", DeviceType::Cpu)]), "Available devices:\n  (none)\n");
        assert_eq!(
            listing(&[dev("CPU", DeviceType::Cpu), dev("CUDA0", DeviceType::Gpu)]),
            "Available devices:\n  CUDA0: CUDA0 desc (8 MiB, 3 MiB free)\n"
        );
    }

    #[test]
    fn notes_a_gpu_backend_without_devices() {
        let dev = |name: &str, kind| Device {
            index: 0,
            name: name.into(),
            description: String::new(),
            kind,
            memory_free: 0,
            memory_total: 0,
        };
        let backends = |b: &[&str]| b.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cpu = [dev("CPU", DeviceType::Cpu)];
        assert_eq!(missing_backends_note(&backends(&["CPU"]), &cpu), None);
        let note = missing_backends_note(&backends(&["CPU", "CUDA"]), &cpu).unwrap();
        assert!(note.contains("built with CUDA, but no CUDA device was found"), "{note}");
        let gpu = [dev("CPU", DeviceType::Cpu), dev("CUDA0", DeviceType::Gpu)];
        assert_eq!(missing_backends_note(&backends(&["CPU", "CUDA"]), &gpu), None);
    }
}
