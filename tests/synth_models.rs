//! Synthetic models load in llama.cpp, quantize, report their preset's parameter count and run.

use benchkit::quantize::Quant;
use benchkit::synth::{self, Preset, Shape, SynthConfig, WeightType};
use benchkit::{Backend, Batch, ContextParams, Model, ModelParams};

fn tiny_spec() -> SynthConfig {
    SynthConfig { name: "tiny".into(), shape: Shape::tiny(), seed: 1, weight_type: WeightType::F16 }
}

fn decode_text(model: &Model) -> Vec<f32> {
    let tokens = model.tokenize("hello world, this is a test", true).unwrap();
    assert!(tokens.len() > 2);
    // Ordinary text becomes ordinary pieces, not byte fallbacks.
    assert!(tokens[1..].iter().all(|&t| t >= 259), "{tokens:?}");
    let mut ctx = model.new_context(&ContextParams::default().n_ctx(128).threads(2)).unwrap();
    let mut b = Batch::new(tokens.len(), 1).unwrap();
    for (i, t) in tokens.iter().enumerate() {
        b.add(*t, i as i32, &[0], i + 1 == tokens.len()).unwrap();
    }
    ctx.decode(&b).unwrap();
    ctx.logits_ith(-1).unwrap().to_vec()
}

#[test]
fn tiny_model_loads_quantizes_and_decodes() {
    let backend = Backend::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = tiny_spec();
    let f16 = synth::cached_model_in(&backend, dir.path(), &spec, None).unwrap();
    let model = Model::load(&backend, &f16, &ModelParams::default()).unwrap();
    assert_eq!(model.info().n_params, spec.shape.n_params());
    assert_eq!(model.info().architecture, "llama");
    assert_eq!(model.info().n_vocab, spec.shape.n_vocab);
    assert_eq!(model.info().n_layer, spec.shape.n_layer);
    let logits = decode_text(&model);
    assert!(logits.iter().all(|v| v.is_finite()));

    for (quant, ftype) in [(Quant::Q4_0, "Q4_0"), (Quant::Q8_0, "Q8_0"), (Quant::Q4_K_M, "Q4_K - Medium")] {
        let path = synth::cached_model_in(&backend, dir.path(), &spec, Some(quant)).unwrap();
        let m = Model::load(&backend, &path, &ModelParams::default()).unwrap();
        assert_eq!(m.info().file_type, ftype);
        assert_eq!(m.info().n_params, spec.shape.n_params());
        assert!(m.info().size_bytes < model.info().size_bytes);
        assert!(decode_text(&m).iter().all(|v| v.is_finite()));
    }
}

#[test]
fn cache_reuses_and_repairs() {
    let backend = Backend::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = tiny_spec();
    let a = synth::cached_model_in(&backend, dir.path(), &spec, Some(Quant::Q8_0)).unwrap();
    let modified = std::fs::metadata(&a).unwrap().modified().unwrap();
    let b = synth::cached_model_in(&backend, dir.path(), &spec, Some(Quant::Q8_0)).unwrap();
    assert_eq!(a, b);
    assert_eq!(std::fs::metadata(&b).unwrap().modified().unwrap(), modified, "cached file was rewritten");
    // A damaged cache entry (interrupted copy) is regenerated, not handed to llama.cpp.
    let len = std::fs::metadata(&a).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&a).unwrap().set_len(len / 2).unwrap();
    let c = synth::cached_model_in(&backend, dir.path(), &spec, Some(Quant::Q8_0)).unwrap();
    assert_eq!(std::fs::metadata(&c).unwrap().len(), len);
    Model::load(&backend, &c, &ModelParams::default()).unwrap();
    // Different seeds are different cache entries.
    let other = SynthConfig { seed: 2, ..spec };
    assert_ne!(
        synth::cache_file_name(&other, Some(Quant::Q8_0)),
        synth::cache_file_name(&tiny_spec(), Some(Quant::Q8_0))
    );
}

#[test]
fn named_preset_reports_its_parameter_count() {
    let backend = Backend::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let preset = Preset::Qwen2_5_0_5B;
    let spec = synth::preset_config(preset, 42);
    let path = synth::cached_model_in(&backend, dir.path(), &spec, None).unwrap();
    let model = Model::load(&backend, &path, &ModelParams::default()).unwrap();
    assert_eq!(model.info().n_params, 494_032_768);
    assert_eq!(model.info().n_params, preset.shape().n_params());
    assert_eq!(model.info().n_embd, 896);
    assert_eq!(model.info().n_head_kv, 2);
    assert_eq!(model.meta("general.name").as_deref(), Some("qwen2.5-0.5b"));
}
