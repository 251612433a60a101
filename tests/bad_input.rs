//! Every kind of bad input yields its typed error and the process survives.

use benchkit::gguf::GgufError;
use benchkit::{
    Backend, ContextError, ContextParams, CpuMask, DeviceSelection, Model, ModelError, ModelParams, SeqError,
    TensorBuftOverride, ThreadPool, ThreadPoolError, ThreadPoolParams,
};
use std::io::Write;
use std::path::Path;

fn load(path: &Path) -> Result<Model, ModelError> {
    Model::load(&Backend::init().unwrap(), path, &ModelParams::default())
}

fn copy_prefix(src: &Path, dst: &Path, n: usize) {
    let mut f = std::fs::File::open(src).unwrap();
    let mut buf = vec![0u8; n];
    std::io::Read::read_exact(&mut f, &mut buf).unwrap();
    std::fs::write(dst, buf).unwrap();
}

#[test]
fn missing_path() {
    let err = load(Path::new("/nonexistent/model.gguf")).unwrap_err();
    assert!(matches!(err, ModelError::InvalidFile(GgufError::NotFound { .. })), "{err}");
}

#[test]
fn directory() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(dir.path()).unwrap_err();
    assert!(matches!(err, ModelError::InvalidFile(GgufError::IsDirectory { .. })), "{err}");
}

#[test]
fn empty_file() {
    let f = tempfile::NamedTempFile::new().unwrap();
    let err = load(f.path()).unwrap_err();
    assert!(matches!(err, ModelError::InvalidFile(GgufError::Empty { .. })), "{err}");
}

#[test]
fn not_gguf() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(f, "this is a text file, not a model").unwrap();
    let err = load(f.path()).unwrap_err();
    assert!(matches!(err, ModelError::InvalidFile(GgufError::NotGguf { .. })), "{err}");
}

#[test]
fn truncated_real_model() {
    let dir = tempfile::tempdir().unwrap();
    let real = benchkit_suite::test_model();
    // Cut inside the metadata, inside the tensor table, and inside the tensor data.
    for n in [8usize, 4096, 1 << 20, 200 << 20] {
        let p = dir.path().join(format!("cut{n}.gguf"));
        copy_prefix(&real, &p, n);
        let err = load(&p).unwrap_err();
        assert!(
            matches!(err, ModelError::InvalidFile(GgufError::Truncated { .. } | GgufError::TensorOutOfBounds { .. })),
            "cut at {n}: {err}"
        );
    }
}

#[test]
fn corrupted_real_model() {
    let dir = tempfile::tempdir().unwrap();
    let real = benchkit_suite::test_model();
    let header = 1 << 20;
    let mut bytes = vec![0u8; header];
    std::io::Read::read_exact(&mut std::fs::File::open(&real).unwrap(), &mut bytes).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        // Keep the file's real size so only the corruption is wrong.
        let p = dir.path().join(name);
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(bytes).unwrap();
        f.set_len(benchkit_suite::TEST_MODEL_BYTES).unwrap();
        p
    };
    let mut bad_version = bytes.clone();
    bad_version[4..8].copy_from_slice(&99u32.to_le_bytes());
    let err = load(&write("version.gguf", &bad_version)).unwrap_err();
    assert!(matches!(err, ModelError::InvalidFile(GgufError::UnsupportedVersion { version: 99, .. })), "{err}");

    let mut huge_count = bytes.clone();
    huge_count[8..16].copy_from_slice(&u64::MAX.to_le_bytes()); // n_tensors
    let err = load(&write("count.gguf", &huge_count)).unwrap_err();
    assert!(matches!(err, ModelError::InvalidFile(_)), "{err}");

    // Garbage over the metadata: whatever it decodes to, it must be an error, not an abort.
    let mut garbage = bytes.clone();
    for (i, b) in garbage[24..4096].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    let err = load(&write("garbage.gguf", &garbage)).unwrap_err();
    assert!(matches!(err, ModelError::InvalidFile(_)), "{err}");
}

#[test]
fn absurd_context_params() {
    let backend = Backend::init().unwrap();
    let model = Model::load(&backend, benchkit_suite::test_model(), &ModelParams::default()).unwrap();
    let cases = [
        ("n_ctx", ContextParams::default().n_ctx(0)),
        ("n_batch", ContextParams::default().n_batch(0)),
        ("n_ubatch", ContextParams::default().n_ubatch(0)),
        ("n_threads", ContextParams::default().threads(0)),
        ("n_seq_max", ContextParams::default().n_seq_max(0)),
        ("n_seq_max", ContextParams::default().n_seq_max(1_000_000)),
    ];
    for (name, params) in cases {
        match model.new_context(&params) {
            Err(ContextError::InvalidParam { name: got, .. }) => assert_eq!(got, name),
            other => panic!("{name}: expected InvalidParam, got {other:?}"),
        }
    }
}

#[test]
fn cpu_mask_naming_missing_cpus() {
    let n = benchkit::system::n_cpus_configured();
    let mut p = ThreadPoolParams::new(1);
    p.cpu_mask = Some(CpuMask::from_cpus(&[n + 3]));
    match ThreadPool::new(&p) {
        Err(ThreadPoolError::NoSuchCpu { cpu, n_cpus, .. }) => {
            assert_eq!(cpu, n + 3);
            assert_eq!(n_cpus, n);
        }
        other => panic!("expected NoSuchCpu, got {other:?}"),
    }
    let mut p = ThreadPoolParams::new(0);
    p.cpu_mask = None;
    assert!(matches!(ThreadPool::new(&p), Err(ThreadPoolError::InvalidThreads { n: 0, .. })));
}

#[test]
fn bad_model_params() {
    let real = benchkit_suite::test_model();
    let backend = Backend::init().unwrap();
    let p = ModelParams { devices: DeviceSelection::Only(vec!["NoSuchGPU9".into()]), ..ModelParams::default() };
    assert!(matches!(Model::load(&backend, &real, &p), Err(ModelError::NoSuchDevice { .. })));
    // llama.cpp may abort on an unknown buffer type: checked first, a typed error
    let p = ModelParams {
        tensor_buft_overrides: vec![TensorBuftOverride::new("ffn", "NoSuchBuft")],
        ..ModelParams::default()
    };
    assert!(matches!(Model::load(&backend, &real, &p), Err(ModelError::NoSuchBufferType { .. })));
    let p =
        ModelParams { tensor_buft_overrides: vec![TensorBuftOverride::new("ff\0n", "CPU")], ..ModelParams::default() };
    assert!(matches!(
        Model::load(&backend, &real, &p),
        Err(ModelError::InvalidParam { name: "tensor_buft_overrides", .. })
    ));
    // a pattern llama.cpp's std::regex rejects fails the load, the process survives
    let p =
        ModelParams { tensor_buft_overrides: vec![TensorBuftOverride::new("ffn_(", "CPU")], ..ModelParams::default() };
    assert!(matches!(Model::load(&backend, &real, &p), Err(ModelError::LoadFailed { .. })));
    let p = ModelParams { tensor_split: vec![f32::NAN], ..ModelParams::default() };
    assert!(matches!(Model::load(&backend, &real, &p), Err(ModelError::InvalidParam { name: "tensor_split", .. })));
}

#[test]
fn sequence_ids_outside_the_context_are_typed_errors() {
    // llama.cpp asserts (aborts the process) on these; benchkit checks them first.
    let model = load(&benchkit_suite::test_model()).unwrap();
    let mut ctx = model.new_context(&ContextParams::default().n_ctx(256).n_seq_max(2)).unwrap();
    let out = |seq| SeqError::OutOfRange { seq, n_seq_max: 2, any_allowed: false };
    assert_eq!(ctx.seq_pos_max(2), Err(out(2)));
    assert_eq!(ctx.seq_pos_max(-1), Err(out(-1)));
    assert_eq!(ctx.seq_state(7), Err(out(7)));
    assert_eq!(ctx.set_seq_state(&[], 3), Err(out(3)));
    assert_eq!(ctx.memory_seq_rm(2, -1, -1), Err(SeqError::OutOfRange { seq: 2, n_seq_max: 2, any_allowed: true }));
    assert_eq!(ctx.memory_seq_rm(-2, 0, 1), Err(SeqError::OutOfRange { seq: -2, n_seq_max: 2, any_allowed: true }));
    // The valid ones still work: -1 is every sequence for memory_seq_rm.
    assert_eq!(ctx.memory_seq_rm(-1, -1, -1), Ok(true));
    assert_eq!(ctx.seq_pos_max(1), Ok(-1));
    let state = ctx.seq_state(1).unwrap();
    assert_eq!(ctx.set_seq_state(&state, 0), Ok(true));
    let err = ctx.seq_pos_max(9).unwrap_err();
    assert_eq!(err.to_string(), "sequence id 9 is outside 0..2");
}
