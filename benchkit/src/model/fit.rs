//! llama-bench's `--fit-target` / `--fit-ctx`.
//!
//! llama-bench hands a point that sets either to llama.cpp's `common_fit_params` (in
//! llama.cpp's `common` library): it resets `n_gpu_layers`, the tensor split and the tensor
//! overrides (including `-ncmoe`'s) to their defaults and lets the fit choose them so that each
//! offload device keeps the target free; the test's context size stays fixed. That fit measures
//! per-device memory through llama.cpp internals that `llama.h` does not export, and this build
//! does not link `common`. So benchkit does what the fit does when the model has no offload
//! device (a CPU-only build, or `-dev none`): nothing to distribute, the parameters it owns go
//! back to their defaults, as llama-bench passes them. With offload devices it reports
//! [`ModelError::FitUnavailable`] rather than measure something other than llama-bench.

use super::options::DeviceSelection;
use super::{ModelError, ModelParams};
use crate::devices::DeviceType;
use std::borrow::Cow;

/// The parameters to load with: `params` itself unless it asks for a fit.
pub(crate) fn apply(params: &ModelParams) -> Result<Cow<'_, ModelParams>, ModelError> {
    if !params.fit_requested() {
        return Ok(Cow::Borrowed(params));
    }
    let list = crate::devices::list();
    let offload: Vec<String> = match &params.devices {
        DeviceSelection::None => Vec::new(),
        DeviceSelection::Only(_) => params.devices.resolve()?.into_iter().map(|i| list[i].name.clone()).collect(),
        // What llama.cpp picks by default: GPUs (RPC servers register as GPUs) and integrated GPUs.
        _ => list
            .iter()
            .filter(|d| matches!(d.kind, DeviceType::Gpu | DeviceType::IntegratedGpu))
            .map(|d| d.name.clone())
            .collect(),
    };
    if !offload.is_empty() {
        return Err(ModelError::FitUnavailable { devices: offload });
    }
    let defaults = ModelParams::default();
    Ok(Cow::Owned(ModelParams {
        n_gpu_layers: defaults.n_gpu_layers,
        tensor_split: Vec::new(),
        tensor_buft_overrides: Vec::new(),
        n_cpu_moe: 0,
        ..params.clone()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TensorBuftOverride;

    #[test]
    fn fit_without_offload_devices_resets_what_the_fit_owns() {
        crate::Backend::init().unwrap();
        let p = ModelParams { n_gpu_layers: 3, n_cpu_moe: 2, tensor_split: vec![1.0], ..ModelParams::default() };
        assert!(matches!(apply(&p).unwrap(), Cow::Borrowed(_)), "no fit asked: unchanged");
        let p = ModelParams {
            fit_target_mib: 1024,
            devices: DeviceSelection::None,
            tensor_buft_overrides: vec![TensorBuftOverride::new("x", "CPU")],
            ..p
        };
        let fitted = apply(&p).unwrap();
        assert_eq!(fitted.n_gpu_layers, -1);
        assert_eq!(fitted.n_cpu_moe, 0);
        assert!(fitted.tensor_split.is_empty() && fitted.tensor_buft_overrides.is_empty());
        assert_eq!(fitted.fit_target_mib, 1024);
        let only_ctx = ModelParams { fit_min_ctx: 4096, devices: DeviceSelection::None, ..ModelParams::default() };
        assert!(matches!(apply(&only_ctx).unwrap(), Cow::Owned(_)));
    }
}
