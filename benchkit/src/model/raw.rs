//! `llama_model_params` from [`ModelParams`], every value checked first, with the buffers its
//! pointers refer to kept alive alongside it.

use super::options::{buffer_type, n_cpu_moe_patterns};
use super::{ModelError, ModelParams};
use llama_sys as sys;
use std::ffi::CString;

/// llama.cpp's model parameters plus the arrays and strings they point into. Moving this
/// struct moves only the Vec/CString handles, so the pointers in `raw` stay valid for as long
/// as it lives.
pub(crate) struct RawModelParams {
    pub(crate) raw: sys::llama_model_params,
    _split: Vec<f32>,
    _devices: Vec<sys::ggml_backend_dev_t>,
    _patterns: Vec<CString>,
    _overrides: Vec<sys::llama_model_tensor_buft_override>,
}

impl RawModelParams {
    /// Checks `params` against this build and the device registry and builds the C struct.
    /// Nothing llama.cpp would abort on gets through: devices and buffer types are looked up
    /// here, override patterns must be C strings.
    pub(crate) fn new(params: &ModelParams) -> Result<Self, ModelError> {
        // SAFETY: pure query.
        let max_devices = unsafe { sys::llama_max_devices() };
        if params.tensor_split.len() > max_devices {
            return Err(ModelError::InvalidParam {
                name: "tensor_split",
                reason: format!("{} entries, this build supports at most {max_devices}", params.tensor_split.len()),
            });
        }
        if params.tensor_split.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(ModelError::InvalidParam {
                name: "tensor_split",
                reason: "entries must be finite and >= 0".into(),
            });
        }
        let mut split = vec![0f32; max_devices.max(1)];
        split[..params.tensor_split.len()].copy_from_slice(&params.tensor_split);
        if params.main_gpu < 0 {
            return Err(ModelError::InvalidParam { name: "main_gpu", reason: format!("{} < 0", params.main_gpu) });
        }

        // llama.cpp reads `devices` up to its null entry: [null] alone means no offload device.
        let all_devices = crate::devices::raw_devices();
        let mut devices: Vec<sys::ggml_backend_dev_t> =
            params.devices.resolve()?.into_iter().map(|i| all_devices[i]).collect();
        devices.push(std::ptr::null_mut());

        // The user's overrides first, then -ncmoe's expert tensors to the CPU buffer type
        // (llama.cpp applies the first matching pattern), then the terminating null pattern.
        let mut targets = Vec::new();
        for o in &params.tensor_buft_overrides {
            targets.push((o.pattern.clone(), buffer_type(&o.buffer_type)?));
        }
        if params.n_cpu_moe > 0 {
            // SAFETY: returns the static CPU buffer type.
            let cpu = unsafe { sys::ggml_backend_cpu_buffer_type() };
            targets.extend(n_cpu_moe_patterns(params.n_cpu_moe).into_iter().map(|p| (p, cpu)));
        }
        let mut patterns = Vec::with_capacity(targets.len());
        for (pattern, _) in &targets {
            let c = CString::new(pattern.as_str()).map_err(|_| ModelError::InvalidParam {
                name: "tensor_buft_overrides",
                reason: format!("pattern {pattern:?} contains a NUL byte"),
            })?;
            patterns.push(c);
        }
        let mut overrides: Vec<sys::llama_model_tensor_buft_override> = patterns
            .iter()
            .zip(&targets)
            .map(|(c, &(_, buft))| sys::llama_model_tensor_buft_override { pattern: c.as_ptr(), buft })
            .collect();
        overrides.push(sys::llama_model_tensor_buft_override { pattern: std::ptr::null(), buft: std::ptr::null_mut() });

        // SAFETY: returns a POD struct by value.
        let mut raw = unsafe { sys::llama_model_default_params() };
        raw.n_gpu_layers = params.n_gpu_layers;
        raw.split_mode = params.split_mode.raw();
        raw.main_gpu = params.main_gpu;
        raw.tensor_split = split.as_ptr();
        if params.devices != super::DeviceSelection::Auto {
            raw.devices = devices.as_mut_ptr();
        }
        if overrides.len() > 1 {
            raw.tensor_buft_overrides = overrides.as_ptr();
        }
        raw.load_mode = params.load_mode.raw();
        raw.lazy_mode = params.lazy_mode.raw();
        raw.use_extra_bufts = params.repack;
        raw.no_host = params.no_host;
        Ok(RawModelParams { raw, _split: split, _devices: devices, _patterns: patterns, _overrides: overrides })
    }
}
