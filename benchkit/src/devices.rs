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
