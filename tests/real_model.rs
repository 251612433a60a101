//! The real gemma-3-270m model: metadata, decoding, threadpools, perf counters, decode errors.

use benchkit::{
    Backend, Batch, BuildInfo, ContextParams, DecodeError, Model, ModelParams, SystemInfo, ThreadPool, ThreadPoolParams,
};
use std::sync::Arc;

fn model() -> Model {
    Model::load(&Backend::init().unwrap(), benchkit_suite::test_model(), &ModelParams::default()).unwrap()
}

fn prompt_batch(model: &Model, text: &str) -> Batch {
    let tokens = model.tokenize(text, true).unwrap();
    let mut b = Batch::new(tokens.len(), 1).unwrap();
    let n = tokens.len();
    for (i, t) in tokens.into_iter().enumerate() {
        b.add(t, i as i32, &[0], i + 1 == n).unwrap();
    }
    b
}

#[test]
fn reports_true_metadata() {
    let m = model();
    let info = m.info();
    assert_eq!(info.architecture, "gemma3");
    assert_eq!(info.file_bytes, benchkit_suite::TEST_MODEL_BYTES);
    // llama-bench prints this model as "268.10 M" params.
    assert_eq!(format!("{:.2} M", info.n_params as f64 / 1e6), "268.10 M");
    assert!(info.description.starts_with("gemma3"), "{}", info.description);
    assert!(info.file_type.starts_with("Q4_K"), "{}", info.file_type);
    assert!(info.size_bytes > 200_000_000 && info.size_bytes < info.file_bytes);
    assert_eq!(info.n_vocab, 262_144);
    assert_eq!(m.meta("general.architecture").as_deref(), Some("gemma3"));
    assert!(m.add_bos());
}

#[test]
fn decodes_deterministically_with_and_without_a_pinned_pool() {
    let m = model();
    let mut ctx = m.new_context(&ContextParams::default().n_ctx(256).threads(2)).unwrap();
    let batch = prompt_batch(&m, "The capital of France is");
    ctx.decode(&batch).unwrap();
    let first = ctx.logits_ith(-1).unwrap().to_vec();
    assert_eq!(first.len(), m.info().n_vocab as usize);
    assert!(first.iter().all(|v| v.is_finite()));
    let perf = ctx.perf();
    assert_eq!(perf.n_p_eval as usize, batch.len());

    // Same input after clearing memory, on a strictly pinned single-CPU pool: same logits.
    ctx.memory_clear(true);
    let mut p = ThreadPoolParams::new(1);
    p.cpu_mask = Some(benchkit::CpuMask::from_cpus(&[0]));
    p.strict_cpu = true;
    ctx.attach_threadpool(Arc::new(ThreadPool::new(&p).unwrap()), None);
    ctx.decode(&batch).unwrap();
    let second = ctx.logits_ith(-1).unwrap().to_vec();
    let max_diff = first.iter().zip(&second).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(max_diff < 1e-3, "max logit difference {max_diff}");
    ctx.detach_threadpool();
}

#[test]
fn decode_errors_are_typed() {
    let m = model();
    let mut ctx = m.new_context(&ContextParams::default().n_ctx(256).n_batch(64).n_ubatch(64)).unwrap();
    let mut b = Batch::new(128, 2).unwrap();
    assert!(matches!(ctx.decode(&b), Err(DecodeError::EmptyBatch)));
    b.add(m.info().n_vocab as i32, 0, &[0], true).unwrap();
    assert!(matches!(ctx.decode(&b), Err(DecodeError::TokenOutOfRange { .. })));
    b.clear();
    b.add(1, 0, &[1], true).unwrap();
    assert!(matches!(ctx.decode(&b), Err(DecodeError::SeqOutOfRange { seq: 1, .. })));
    b.clear();
    for i in 0..65 {
        b.add(1, i, &[0], false).unwrap();
    }
    assert!(matches!(ctx.decode(&b), Err(DecodeError::BatchTooLarge { n: 65, n_batch: 64 })));
    // Fill the context, then one more token has no KV slot.
    let n_ctx = ctx.n_ctx() as i32;
    let mut pos = 0;
    while pos < n_ctx {
        b.clear();
        for _ in 0..64.min(n_ctx - pos) {
            b.add(1, pos, &[0], false).unwrap();
            pos += 1;
        }
        ctx.decode(&b).unwrap();
    }
    b.clear();
    b.add(1, pos, &[0], true).unwrap();
    assert!(ctx.decode(&b).is_err());
    // The context is still usable after the failure.
    ctx.memory_clear(true);
    b.clear();
    b.add(1, 0, &[0], true).unwrap();
    ctx.decode(&b).unwrap();
    assert!(ctx.logits_ith(-1).is_some());
}

#[test]
fn build_and_system_info_describe_the_run() {
    let backend = Backend::init().unwrap();
    let build = BuildInfo::current();
    assert!(build.backends.contains(&"CPU".to_string()));
    assert!(!build.compiler.is_empty() && build.compiler != "unknown", "{}", build.compiler);
    assert!(build.cmake_defines.iter().any(|(k, _)| k == "GGML_NATIVE"));
    match build.source.as_str() {
        "crates.io" => assert_eq!(build.package.as_deref(), Some("llama-cpp-sys-2 0.1.161")),
        "LLAMA_CPP_DIR" | "vendor" => assert!(!build.source_dir.is_empty()),
        other => panic!("unexpected source {other}"),
    }
    let sys = SystemInfo::collect();
    assert!(sys.n_cpus >= 1 && sys.n_physical_cores >= 1 && sys.memory_bytes > 0);
    assert!(sys.llama_system_info.contains("CPU"));
    let devices = backend.devices();
    assert!(devices.iter().any(|d| d.kind == benchkit::DeviceType::Cpu));
    // serializable for result records
    let json = serde_json::to_string(&(build, sys)).unwrap();
    assert!(json.contains("llama_system_info"));
}

#[test]
fn text_past_i32_max_bytes_is_a_typed_error() {
    // llama.cpp's length parameter is an int32_t: a cast used to wrap for texts past 2 GiB.
    let m = model();
    let text = "a".repeat(i32::MAX as usize + 1);
    let err = m.tokenize(&text, true).unwrap_err();
    assert_eq!(err, benchkit::TokenizeError::TooLong { bytes: i32::MAX as usize + 1, max: i32::MAX as usize });
    assert_eq!(m.tokenize("Hello", true).unwrap().len(), 2, "BOS + Hello");
}
