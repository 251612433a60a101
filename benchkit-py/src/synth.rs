//! `synth_model`: a synthetic GGUF model of a preset's shape, generated once and cached.

use crate::errors;
use benchkit::synth::{cached_model, preset_config, Preset, DEFAULT_PRESET, DEFAULT_SEED};
use benchkit::Backend;
use pyo3::prelude::*;

/// The path of the synthetic model of `preset` (its name, e.g. `"tiny"`), weights seeded by
/// `seed`, quantised to `quant` (`None`: the default quantisation; `"f32"`: none).
#[pyfunction]
#[pyo3(signature = (preset=None, seed=None, quant=None, shape=None))]
pub(crate) fn synth_model(
    py: Python<'_>,
    preset: Option<&str>,
    seed: Option<u64>,
    quant: Option<&str>,
    shape: Option<&str>,
) -> PyResult<String> {
    let preset = match preset {
        None => DEFAULT_PRESET,
        Some(p) => Preset::from_name(p).map_err(|e| errors::synth(py, &e))?,
    };
    let mut spec = preset_config(preset, seed.unwrap_or(DEFAULT_SEED));
    if let Some(json) = shape {
        let mut fields = serde_json::to_value(spec.shape).unwrap_or_default();
        let overrides: serde_json::Value =
            serde_json::from_str(json).map_err(|e| errors::bad_param(py, "shape", json.into(), e.to_string()))?;
        if let (Some(base), Some(o)) = (fields.as_object_mut(), overrides.as_object()) {
            for (k, v) in o {
                if !base.contains_key(k) {
                    return Err(errors::bad_param(py, k, v.to_string(), "no such shape field".into()));
                }
                base.insert(k.clone(), v.clone());
            }
        }
        spec.shape =
            serde_json::from_value(fields).map_err(|e| errors::bad_param(py, "shape", json.into(), e.to_string()))?;
        spec.name = format!("{}-custom", spec.name);
    }
    let quant =
        match quant {
            None => Some(benchkit::synth::DEFAULT_QUANT),
            Some("f32") => None,
            Some(q) => Some(q.parse().map_err(|e: benchkit::quantize::QuantizeError| {
                errors::bad_param(py, "quant", q.into(), e.to_string())
            })?),
        };
    let backend = Backend::init().map_err(|e| errors::backend(py, &e))?;
    py.detach(|| cached_model(&backend, &spec, quant))
        .map(|p| p.display().to_string())
        .map_err(|e| errors::synth(py, &e))
}
