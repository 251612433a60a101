//! pp/tg sweeps: grid expansion, llama-bench statistics, failures recorded while the sweep goes
//! on, depth, and the criterion adapter.

use benchkit::bench::{Grid, Measurer, Progress, RunConfig, Status, Sweep, Test};
use benchkit::quantize::Quant;
use benchkit::synth::{self, Shape, SynthConfig, WeightType};
use benchkit::{Backend, ContextParams, Model, ModelParams, ThreadPoolParams};
use std::path::PathBuf;
use std::sync::OnceLock;

fn tiny_model() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("benchkit-test-{}", std::process::id()));
        let spec = SynthConfig { name: "tiny".into(), shape: Shape::tiny(), seed: 3, weight_type: WeightType::F16 };
        synth::cached_model_in(&Backend::init().unwrap(), &dir, &spec, Some(Quant::Q8_0)).unwrap()
    })
    .clone()
}

fn quick() -> RunConfig {
    RunConfig { repetitions: 3, ..RunConfig::default() }
}

#[test]
fn sweep_measures_every_point_with_llama_bench_statistics() {
    let backend = Backend::init().unwrap();
    let grid = Grid {
        n_prompt: vec![32],
        n_gen: vec![8],
        n_pg: vec![(16, 4)],
        n_depth: vec![0, 16],
        n_threads: vec![1, 2],
        n_batch: vec![16],
        n_ubatch: vec![16],
        ..Grid::new(tiny_model())
    };
    let mut events = Vec::new();
    let records: Vec<_> =
        Sweep::new(&backend, &grid, quick()).unwrap().on_progress(|p| events.push(p.clone())).collect();
    assert_eq!(records.len(), 2 * 3 * 2);
    for r in &records {
        assert_eq!(r.status, Status::Ok, "{:?}", r.error);
        assert_eq!(r.samples_ns.len(), 3);
        assert_eq!(r.samples_ts.len(), 3);
        let tokens = (r.n_prompt + r.n_gen) as f64;
        for (ns, ts) in r.samples_ns.iter().zip(&r.samples_ts) {
            assert!((ts - tokens * 1e9 / *ns as f64).abs() < 1e-6 * ts);
        }
        let mean = r.samples_ts.iter().sum::<f64>() / 3.0;
        assert!((r.avg_ts - mean).abs() < 1e-9 * mean);
        assert!(r.avg_ts > 0.0 && r.stddev_ts >= 0.0);
        assert_eq!(r.model_n_params, Shape::tiny().n_params());
        assert!(r.model_type.starts_with("llama") && r.model_type.ends_with("Q8_0"), "{}", r.model_type);
        assert_eq!(r.backends, "CPU");
        assert_eq!(r.n_batch, 16);
    }
    let names: Vec<&str> = records.iter().take(6).map(|r| r.test.as_str()).collect();
    assert_eq!(names, ["pp32", "tg8", "pp16+tg4", "pp32 @ d16", "tg8 @ d16", "pp16+tg4 @ d16"]);
    assert_eq!(records[0].n_threads, 1);
    assert_eq!(records[6].n_threads, 2);
    assert_eq!(events.iter().filter(|e| matches!(e, Progress::Start { .. })).count(), 12);
    assert_eq!(events.iter().filter(|e| matches!(e, Progress::Repetition { .. })).count(), 36);
}

#[test]
fn impossible_points_are_recorded_and_the_sweep_goes_on() {
    let backend = Backend::init().unwrap();
    let missing_cpu = format!("0x{:x}", 1u128 << (benchkit::system::n_cpus_configured() + 1));
    let grid = Grid {
        models: vec![tiny_model(), PathBuf::from("/nonexistent/model.gguf")],
        n_prompt: vec![16],
        n_gen: vec![0],
        cpu_mask: vec!["0x0".into(), missing_cpu.clone(), "0x1".into()],
        ..Grid::default()
    };
    let records: Vec<_> = Sweep::new(&backend, &grid, quick()).unwrap().collect();
    assert_eq!(records.len(), 6);
    let ok: Vec<_> = records.iter().filter(|r| r.status == Status::Ok).collect();
    assert_eq!(ok.len(), 2, "{records:#?}");
    assert_eq!(ok[0].cpu_mask, "0x0");
    assert_eq!(ok[1].cpu_mask, "0x1");
    let bad_mask = &records[1];
    assert_eq!(bad_mask.status, Status::Failed);
    assert!(bad_mask.error.as_deref().unwrap().contains("cpu mask"), "{:?}", bad_mask.error);
    assert_eq!(bad_mask.avg_ts, 0.0);
    for r in &records[3..] {
        assert_eq!(r.status, Status::Failed);
        assert!(r.error.as_deref().unwrap().contains("not found"), "{:?}", r.error);
    }
    // Every record, failed or not, serializes with its parameters for the results file.
    for r in &records {
        let json = serde_json::to_value(r).unwrap();
        let prov = &json["provenance"];
        assert!(prov["build"]["backends"].is_array());
        assert_eq!(prov["schema_version"], benchkit::provenance::SCHEMA_VERSION);
        assert_eq!(prov["settings"]["point"]["test"]["n_prompt"], 16, "{}", prov["settings"]);
        assert!(prov["seeds"]["prompt_tokens"].is_u64());
        // The model is described once it loaded; a missing file has none.
        if r.status == Status::Ok {
            assert!(prov["model"]["description"].as_str().is_some_and(|d| !d.is_empty()), "{}", prov["model"]);
        }
        if r.error.as_deref().is_some_and(|e| e.contains("not found")) {
            assert!(prov["model"].is_null());
        }
        assert_eq!(json["n_prompt"], 16);
    }
}

#[test]
fn measurer_drives_criterion_style_timing() {
    let backend = Backend::init().unwrap();
    let model = Model::load(&backend, tiny_model(), &ModelParams::default()).unwrap();
    for test in [Test::pp(32), Test::tg(8), Test::pp(16).at_depth(16)] {
        let mut m = Measurer::new(
            &model,
            test,
            &ContextParams::default().n_batch(16).n_ubatch(16),
            &ThreadPoolParams::new(1),
            1,
        )
        .unwrap();
        assert_eq!(m.tokens_per_run(), u64::from(test.n_prompt + test.n_gen));
        let d = m.iter_custom(3);
        assert!(d.as_nanos() > 0);
    }
}
