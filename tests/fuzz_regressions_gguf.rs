//! The GGUF and KL-base fuzz targets' findings and corpora, in the normal test suite.
//!
//! - Every input kept under `tests/fuzz/gguf/` and `tests/fuzz/kl_base/` (each once crashed a
//!   target or llama.cpp) gets a typed result from the library's reader. Files named
//!   `llama-abort-*` make llama.cpp abort on load (checked against llama-bench of the same
//!   llama.cpp) and must be refused with `GgufError::LlamaAbort`.
//! - Every GGUF file of the fuzz corpus and of `tests/fuzz/gguf/` (and of the directories in
//!   `BENCHKIT_FUZZ_GGUF_CORPUS`) that the reader accepts is loaded by llama.cpp in a supervised
//!   worker: a typed load error is fine, a signal is not. So are one-change variants of a tiny
//!   real model.
//! - `cargo test --release --test fuzz_regressions_gguf -- --ignored write_seeds` regenerates the
//!   seed files of `fuzz/corpus/{gguf,kl_base}/` (the gemma seeds need
//!   scripts/fetch-test-model.sh).

use benchkit::gguf::{GgufError, GgufFile, GgufWriter, Value};
use benchkit::perplexity::{KlBaseHeader, KlBaseWriter, PerplexityError};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The files directly in `dir`, sorted; an absent directory has none.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut v: Vec<PathBuf> = rd.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    v.sort();
    v
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn gguf_regressions_get_typed_results() {
    let dir = root().join("tests/fuzz/gguf");
    let inputs = files(&dir);
    assert!(!inputs.is_empty(), "no regression inputs in {}", dir.display());
    for p in inputs {
        let from_file = GgufFile::open(&p);
        let bytes = std::fs::read(&p).unwrap();
        let from_bytes = GgufFile::from_bytes(&bytes);
        assert_eq!(from_file.is_ok(), from_bytes.is_ok(), "{}", p.display());
        let llama_abort = name(&p).starts_with("llama-abort-");
        match from_file {
            // The layout of accepted files is checked by tests/fuzz_regressions.rs, through the
            // `gguf` target's own check.
            Ok(_) => assert!(!llama_abort, "{}: llama.cpp aborts on it, yet it is accepted", name(&p)),
            Err(e) => {
                // Every refusal names the file.
                assert!(e.to_string().contains(&name(&p)), "{}: {e}", p.display());
                if llama_abort {
                    assert!(matches!(e, GgufError::LlamaAbort { .. }), "{}: {e}", name(&p));
                }
            }
        }
    }
}

/// Reads a KL base completely: header, tokens and every chunk's records.
fn read_kl(p: &Path) -> Result<(KlBaseHeader, usize), PerplexityError> {
    let (h, mut r) = KlBaseHeader::read(p)?;
    let (mut n, mut chunk) = (0, Vec::new());
    for _ in 0..h.n_chunk {
        h.read_chunk(&mut r, &mut chunk)?;
        n += chunk.len();
    }
    Ok((h, n))
}

#[test]
fn kl_base_regressions_get_typed_results() {
    let dirs = [root().join("tests/fuzz/kl_base"), root().join("fuzz/corpus/kl_base")];
    let inputs: Vec<PathBuf> = dirs.iter().flat_map(|d| files(d)).collect();
    assert!(!inputs.is_empty(), "no KL base inputs");
    for p in inputs {
        match read_kl(&p) {
            Ok((h, n)) => {
                assert_eq!(h.expected_bytes(), std::fs::metadata(&p).unwrap().len(), "{}", p.display());
                assert_eq!(n as u64 * 2, h.expected_bytes() - h.header_bytes(), "{}", p.display());
            }
            Err(e) => assert!(
                matches!(
                    e,
                    PerplexityError::NotAKlBase { .. }
                        | PerplexityError::KlTruncated { .. }
                        | PerplexityError::KlInvalid { .. }
                ),
                "{}: {e:?}",
                p.display()
            ),
        }
    }
}

/// How llama.cpp took a file the reader accepts.
#[derive(Debug)]
enum Load {
    /// Loaded (the worker then stopped at the missing KL base it was given).
    Loaded,
    /// Refused with a typed error.
    Refused(String),
}

/// Loads `model` in a worker: a KL-divergence job against a base file that does not exist, so
/// the worker loads the model and then stops with a typed error, before any context is made.
fn load_supervised(model: &Path, missing_base: &Path) -> Result<Load, benchkit::supervise::TrialError> {
    use benchkit::perplexity::{PerplexityConfig, PerplexityJob, PerplexityTask, SupervisedPerplexityError as E};
    use benchkit::supervise::{TrialConfig, WorkerCommand};
    let job = PerplexityJob {
        model: model.to_path_buf(),
        model_params: benchkit::ModelParams::default(),
        params: PerplexityConfig::default(),
        task: PerplexityTask::KlDivergence { base: missing_base.to_path_buf() },
        telemetry: Default::default(),
    };
    let opts = TrialConfig::default()
        .worker(WorkerCommand::program(env!("CARGO_BIN_EXE_benchkit-worker")))
        .timeout(std::time::Duration::from_secs(60));
    match job.run_supervised(&opts, |_| {}) {
        Ok(_) => panic!("{}: a KL run against a missing base succeeded", model.display()),
        Err(E::Trial(benchkit::supervise::TrialError::Failed(msg))) => {
            Ok(if msg.contains(&*missing_base.to_string_lossy()) { Load::Loaded } else { Load::Refused(msg) })
        }
        Err(E::Trial(e)) => Err(e),
        Err(e) => panic!("the job was refused before a worker started: {e}"),
    }
}

#[test]
fn accepted_corpus_files_load_without_abort() {
    let dirs = [root().join("fuzz/corpus/gguf"), root().join("tests/fuzz/gguf")];
    let mut inputs: Vec<PathBuf> = dirs.iter().flat_map(|d| files(d)).collect();
    assert!(!inputs.is_empty(), "no GGUF corpus");
    assert!(inputs.len() <= 600, "{} files: minimise the corpus (cargo fuzz cmin gguf)", inputs.len());
    // A working corpus too, e.g. scripts/fuzz.sh's target/fuzz/corpus/gguf after a long run.
    if let Some(extra) = std::env::var_os("BENCHKIT_FUZZ_GGUF_CORPUS") {
        inputs.extend(std::env::split_paths(&extra).flat_map(|d| files(&d)));
    }
    let tmp = tempfile::tempdir().unwrap();
    let missing_base = tmp.path().join("no-such-base.kld");
    let (mut loaded, mut refused, mut crashed) = (0, Vec::new(), Vec::new());
    let mut rejected = 0;
    for p in &inputs {
        if GgufFile::open(p).is_err() {
            rejected += 1;
            continue;
        }
        match load_supervised(p, &missing_base) {
            Ok(Load::Loaded) => loaded += 1,
            Ok(Load::Refused(msg)) => refused.push(format!("{}: {msg}", name(p))),
            Err(e) => crashed.push(format!("{}: {e}", p.display())),
        }
    }
    eprintln!(
        "{} files: {rejected} refused by the reader; of the {} accepted, {loaded} loaded, {} refused by llama.cpp with an error, {} crashed",
        inputs.len(),
        inputs.len() - rejected,
        refused.len(),
        crashed.len()
    );
    for r in &refused {
        eprintln!("  llama.cpp refused {}", r.lines().next().unwrap_or(""));
    }
    assert!(crashed.is_empty(), "llama.cpp crashed on files the reader accepts:\n{}", crashed.join("\n"));
    // The synthetic seeds are real models: at least they load.
    assert!(loaded > 0, "no accepted file loaded");
}

/// Variants of a tiny real model, one metadata change each (boundary values, deleted keys,
/// other architectures and tokenizers, expert counts): every one the reader accepts loads
/// without an abort. This found most of the `llama-abort-*` inputs.
#[test]
fn metadata_variants_load_without_abort() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base.gguf");
    benchkit::synth::write_gguf(&tiny_spec("sweep", 8, benchkit::synth::WeightType::F32), &base).unwrap();
    let bytes = std::fs::read(&base).unwrap();
    let f = GgufFile::from_bytes(&bytes).unwrap();
    // None: a value the writer refuses (an invalid general.alignment).
    let write = |md: Vec<(String, Value)>| -> Option<Vec<u8>> {
        let mut w = GgufWriter::new();
        for (k, v) in md {
            w.add_kv(k, v);
        }
        for t in &f.tensors {
            w.add_tensor(t.name.clone(), &t.dims, t.ggml_type).unwrap();
        }
        w.write_to(Vec::new(), |i, t, buf| {
            let at = (f.data_offset + f.tensors[i].offset) as usize;
            buf.copy_from_slice(&bytes[at..at + t.n_bytes as usize]);
            Ok(())
        })
        .ok()
    };
    let md = f.metadata.clone();
    let mut variants: Vec<(String, Vec<(String, Value)>)> = Vec::new();
    for (i, (k, v)) in md.iter().enumerate() {
        let values: Vec<Value> = match v {
            Value::U32(_) => [0, 1, 3, 513, u32::MAX].map(Value::U32).to_vec(),
            Value::F32(_) => [0.0, -1.0, f32::NAN].map(Value::F32).to_vec(),
            Value::Bool(b) => vec![Value::Bool(!b)],
            Value::String(_) => ["", "\0", "bert", "gpt2", "t5", "rwkv", "none"].map(Value::from).to_vec(),
            Value::Array(a) => vec![Value::Array(vec![]), Value::Array(a[..a.len() / 2].to_vec())],
            _ => vec![],
        };
        for (j, nv) in values.into_iter().chain([Value::U64(0)]).enumerate() {
            let mut m = md.clone();
            m[i].1 = nv;
            variants.push((format!("{k} value {j}"), m));
        }
        let mut m = md.clone();
        m.remove(i);
        variants.push((format!("{k} deleted"), m));
    }
    for ty in [1, 2, 3, 6] {
        for model in ["llama", "bert", "gpt2"] {
            let m = md
                .iter()
                .map(|(k, v)| match k.as_str() {
                    "tokenizer.ggml.model" => (k.clone(), Value::from(model)),
                    "tokenizer.ggml.token_type" => {
                        (k.clone(), Value::Array(vec![Value::I32(ty); v.as_array().unwrap().len()]))
                    }
                    _ => (k.clone(), v.clone()),
                })
                .collect();
            variants.push((format!("{model} tokenizer, token types {ty}"), m));
        }
    }
    let archs =
        ["gemma3", "qwen2", "qwen3moe", "smallthinker", "llada-moe", "bert", "rwkv6", "mamba", "t5", "deepseek2"];
    for arch in archs {
        for experts in [None, Some((0u32, 0u32)), Some((4, 2))] {
            let mut m: Vec<(String, Value)> = md
                .iter()
                .map(|(k, v)| match k.strip_prefix("llama.") {
                    Some(rest) => (format!("{arch}.{rest}"), v.clone()),
                    None if k == "general.architecture" => (k.clone(), Value::from(arch)),
                    None => (k.clone(), v.clone()),
                })
                .collect();
            if let Some((n, used)) = experts {
                m.push((format!("{arch}.expert_count"), Value::U32(n)));
                m.push((format!("{arch}.expert_used_count"), Value::U32(used)));
            }
            variants.push((format!("architecture {arch}, experts {experts:?}"), m));
        }
    }
    let missing_base = tmp.path().join("no-such-base.kld");
    let (mut rejected, mut loaded, mut refused, mut crashed) = (0, 0, 0, Vec::new());
    for (i, (what, md)) in variants.iter().enumerate() {
        let Some(b) = write(md.clone()) else {
            rejected += 1;
            continue;
        };
        if GgufFile::from_bytes(&b).is_err() {
            rejected += 1;
            continue;
        }
        let p = tmp.path().join(format!("v{i}.gguf"));
        std::fs::write(&p, &b).unwrap();
        match load_supervised(&p, &missing_base) {
            Ok(Load::Loaded) => loaded += 1,
            Ok(Load::Refused(_)) => refused += 1,
            Err(e) => crashed.push(format!("{what}: {e}")),
        }
        std::fs::remove_file(&p).unwrap();
    }
    eprintln!(
        "{} variants: {rejected} refused by the reader, {loaded} loaded, {refused} refused by llama.cpp, {} crashed",
        variants.len(),
        crashed.len()
    );
    assert!(crashed.is_empty(), "llama.cpp crashed on variants the reader accepts:\n{}", crashed.join("\n"));
    assert!(loaded > 0);
}

// ---- seeds ---------------------------------------------------------------------------------

const MAX_SEED: usize = 64 << 10;

fn write_seed(dir: &Path, name: &str, bytes: &[u8]) {
    assert!(bytes.len() < MAX_SEED, "seed {name} is {} bytes", bytes.len());
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
    eprintln!("{}/{name}: {} bytes", dir.display(), bytes.len());
}

/// The gemma model's metadata with every array cut to `keep` entries, and the first small
/// tensors (norm weights) with their real data, up to `max_data` bytes.
fn gemma_cut(path: &Path, keep: usize, max_data: u64) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let f = GgufFile::open(path).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in &f.metadata {
        let v = match v {
            Value::Array(items) => Value::Array(items.iter().take(keep).cloned().collect()),
            v => v.clone(),
        };
        w.add_kv(k.clone(), v);
    }
    let mut kept = Vec::new();
    let mut total = 0;
    for t in f.tensors.iter().filter(|t| t.n_bytes <= 4096) {
        if total + t.n_bytes > max_data {
            break;
        }
        total += t.n_bytes;
        w.add_tensor(t.name.clone(), &t.dims, t.ggml_type).unwrap();
        kept.push(t.clone());
    }
    let mut file = std::fs::File::open(path).unwrap();
    w.write_to(Vec::new(), |i, _, buf| {
        file.seek(SeekFrom::Start(f.data_offset + kept[i].offset)).unwrap();
        file.read_exact(buf).unwrap();
        Ok(())
    })
    .unwrap()
}

fn tiny_spec(name: &str, n_embd: u32, weight_type: benchkit::synth::WeightType) -> benchkit::synth::SynthConfig {
    use benchkit::synth::{Shape, SynthConfig};
    let shape = Shape {
        n_embd,
        n_layer: 1,
        n_head: 2,
        n_head_kv: 1,
        n_ff: n_embd,
        n_vocab: benchkit::synth::MIN_VOCAB,
        n_ctx_train: 64,
        ..Shape::tiny()
    };
    SynthConfig { name: name.into(), shape, seed: 7, weight_type }
}

#[test]
#[ignore = "regenerates the committed seed corpus"]
fn write_seeds() {
    use benchkit::synth::{self, WeightType};
    let gguf_dir = root().join("fuzz/corpus/gguf");
    let tmp = tempfile::tempdir().unwrap();

    // The real gemma model: its first 64 KiB (the start of its 262k-token vocabulary), and its
    // metadata with arrays cut short, with and without a few real tensors.
    let gemma = benchkit_suite::test_model();
    let mut head = vec![0u8; MAX_SEED - 1];
    std::io::Read::read_exact(&mut std::fs::File::open(&gemma).unwrap(), &mut head).unwrap();
    write_seed(&gguf_dir, "gemma-head-64k", &head);
    write_seed(&gguf_dir, "gemma-meta-cut", &gemma_cut(&gemma, 8, 0));
    write_seed(&gguf_dir, "gemma-meta-cut-tensors", &gemma_cut(&gemma, 4, 16 << 10));

    // Synthetic models llama.cpp loads: F32, F16 and a Q8_0 made by llama.cpp's quantizer.
    for (name, spec) in [
        ("synth-f32-e16", tiny_spec("synth-f32", 16, WeightType::F32)),
        ("synth-f16-e32", tiny_spec("synth-f16", 32, WeightType::F16)),
    ] {
        let p = tmp.path().join(name);
        synth::write_gguf(&spec, &p).unwrap();
        write_seed(&gguf_dir, name, &std::fs::read(&p).unwrap());
    }
    let backend = benchkit::Backend::init().unwrap();
    let spec = tiny_spec("synth-q8", 32, WeightType::F16);
    let q8 = synth::cached_model_in(&backend, tmp.path(), &spec, Some(benchkit::quantize::Quant::Q8_0)).unwrap();
    write_seed(&gguf_dir, "synth-q8_0-e32", &std::fs::read(q8).unwrap());

    // KL bases from the writer: odd and even vocabularies, one and several chunks.
    let kl_dir = root().join("fuzz/corpus/kl_base");
    for (n_ctx, n_vocab, n_chunk) in [(4u32, 1u32, 1u32), (8, 5, 2), (16, 32, 1), (6, 261, 2)] {
        let tokens: Vec<i32> = (0..n_ctx * n_chunk).map(|i| ((i * 7) % n_vocab) as i32).collect();
        let n = n_chunk as usize
            * benchkit::perplexity::scored_per_chunk(n_ctx)
            * benchkit::perplexity::record_len(n_vocab);
        let records: Vec<u16> = (0..n).map(|i| (i as u16).wrapping_mul(40503)).collect();
        let mut w = KlBaseWriter::new(Vec::new(), "seed", n_ctx, n_vocab, n_chunk, &tokens).unwrap();
        w.write_records(&records).unwrap();
        write_seed(&kl_dir, &format!("writer-c{n_ctx}-v{n_vocab}-n{n_chunk}"), &w.finish().unwrap());
    }
}

/// The reader refuses a header claiming 2^60 tensors or metadata entries from the header alone.
#[test]
fn absurd_counts_are_refused_from_the_header() {
    for (tensors, kvs) in [(1u64 << 60, 0u64), (0, 1 << 60), (1 << 60, 1 << 60), (u64::MAX, 1)] {
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&tensors.to_le_bytes());
        b.extend_from_slice(&kvs.to_le_bytes());
        b.resize(64, 0);
        let e = GgufFile::from_bytes(&b).unwrap_err();
        assert!(matches!(e, GgufError::InvalidHeader { .. } | GgufError::Truncated { .. }), "{e}");
    }
}
