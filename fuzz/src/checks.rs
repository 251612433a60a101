//! One check per fuzz target: parse the input, assert the properties beyond "no panic".
//! Each panics (a finding) when a property fails.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use benchkit::cli::bench::BenchArgs;
use benchkit::experiment::Experiment;
use benchkit::gguf::{GgufError, GgufFile, GgufWriter, TensorInfo, Value};
use benchkit::placement::{parse_arm, parse_arms_file};
use benchkit::replay::http::{read_stream, StreamOutcome};
use benchkit::replay::workload::{parse_trace, read_sharegpt, TraceOptions, Vocab};
use benchkit::telemetry::prometheus::{Exposition, Scrapes};

use super::heap::bounded;
use super::split::split_points;

/// SSE streams: however the body is cut into reads, the same outcome comes out.
pub fn sse(data: &[u8]) {
    let (cuts, body) = split_points(data);
    let whole: StreamOutcome = bounded(body.len(), || read_stream(&[body]));
    let mut pieces = Vec::with_capacity(cuts.len() + 1);
    let mut at = 0;
    for &c in &cuts {
        pieces.push(&body[at..c]);
        at = c;
    }
    pieces.push(&body[at..]);
    let split = bounded(body.len(), || read_stream(&pieces));
    assert_eq!(whole, split, "the outcome depends on where the stream was cut: {cuts:?}");
}

/// Prometheus text: one page, then up to three scrapes (pieces between form feeds) reduced to
/// a run's server metrics.
pub fn prometheus(data: &[u8]) {
    // The scraper reads bodies as UTF-8 with replacement, as here.
    let text = String::from_utf8_lossy(data);
    let e = bounded(data.len(), || Exposition::parse(&text));
    assert!(e.values.keys().all(|k| !k.is_empty()), "a series with an empty name");
    bounded(data.len(), || {
        let mut scrapes = Scrapes::default();
        for (i, body) in text.split('\u{c}').take(3).enumerate() {
            scrapes.push(i as f64, Ok(body.to_string()));
        }
        let m = scrapes.finish("http://127.0.0.1/metrics");
        serde_json::to_string(&m).expect("server metrics serialize")
    });
}

/// ShareGPT: the result does not depend on the read size; the prefix before a truncation
/// point holds no more records than the whole.
pub fn sharegpt(data: &[u8]) {
    let Some((&chunk, body)) = data.split_first() else { return };
    let path = Path::new("fuzz.json");
    let whole = bounded(body.len(), || read_sharegpt(BufReader::new(body), path));
    let small = bounded(body.len(), || read_sharegpt(BufReader::with_capacity(usize::from(chunk).max(1), body), path));
    match (&whole, &small) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "the load depends on the read size ({chunk})");
            assert_eq!(a.records_ok, a.conversations.len());
            if let Some(at) = a.truncated_at {
                let at = usize::try_from(at).expect("offset");
                assert!(at <= body.len(), "truncated at {at}, past the end {}", body.len());
                if let Ok(p) = read_sharegpt(BufReader::new(&body[..at]), path) {
                    assert!(p.conversations.len() <= a.conversations.len());
                }
            }
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("the load depends on the read size ({chunk}): {whole:?} vs {small:?}"),
    }
}

struct Letters;

impl Vocab for Letters {
    fn n_vocab(&self) -> i32 {
        26
    }
    fn piece(&self, token: i32) -> String {
        char::from(b'a' + token.rem_euclid(26) as u8).to_string()
    }
    fn tokenize(&self, text: &str) -> Vec<i32> {
        text.bytes().filter(u8::is_ascii_lowercase).map(|b| i32::from(b - b'a')).collect()
    }
}

/// JSONL traces: records in time order, and the requests built from them (lengths come from
/// the file, so building must be bounded too).
pub fn trace(data: &[u8]) {
    let Ok(load) = bounded(data.len(), || parse_trace(data, Path::new("fuzz.jsonl"))) else { return };
    assert!(!load.records.is_empty(), "an accepted trace with no record");
    assert!(load.records.windows(2).all(|w| w[0].time_ns <= w[1].time_ns), "records out of order");
    // Prompts are built to the declared lengths: the heap may grow with them (at most
    // 2^24 tokens a record, which the parser enforces); past 2^20 in all, building is skipped
    // to keep each input fast.
    let declared: u64 = load.records.iter().map(|r| u64::from(r.input_len)).sum();
    if declared > 1 << 20 {
        return;
    }
    let options = TraceOptions { block_size: 4, num_requests: None, fixed_output_len: None, seed: 7 };
    bounded(data.len() + 4 * declared as usize, || {
        if let Ok(requests) = load.requests(&Letters, &options) {
            assert_eq!(requests.len(), load.records.len());
        }
    });
}

/// llama-bench command lines (one argument a line): lists, ranges and the grid they span.
pub fn bench_args(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let argv: Vec<String> =
        std::iter::once("benchkit".to_string()).chain(text.split('\n').map(str::to_string)).collect();
    bounded(data.len(), || {
        let Ok(args) = BenchArgs::try_parse_argv(argv) else { return };
        let Ok(grid) = args.grid(vec![PathBuf::from("m.gguf")]) else { return };
        if let Ok(points) = grid.points() {
            assert!(!points.is_empty(), "an accepted grid with no point");
        }
    });
}

/// Experiment files: treatments are the product of the levels, bounded like every expansion.
pub fn experiment(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    bounded(data.len(), || {
        let Ok(e) = Experiment::parse(text, Path::new("fuzz.toml")) else { return };
        assert!(!e.treatments.is_empty(), "an accepted experiment runs nothing");
        for t in e.treatments.iter().take(4) {
            let _ = e.label(t);
        }
    });
}

/// Placement arms: the first byte picks a command-line arm or a TOML arms file.
pub fn arms(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(body);
    bounded(body.len(), || {
        if mode & 1 == 0 {
            let _ = parse_arm(&text);
        } else {
            let _ = parse_arms_file(&text);
        }
    });
}

/// Largest alignment re-written: the writer pads the header up to it in memory.
const MAX_REWRITE_ALIGNMENT: u64 = 1 << 20;

/// GGUF bytes into the validating reader: heap bounded by the input's size, and a file it
/// accepts is self-consistent and survives a re-write with `GgufWriter` unchanged.
pub fn gguf(data: &[u8]) {
    let Ok(f) = bounded(data.len(), || GgufFile::from_bytes(data)) else { return };
    gguf_layout(&f, data.len() as u64);
    if f.alignment > MAX_REWRITE_ALIGNMENT {
        return;
    }

    let mut w = GgufWriter::new();
    for (k, v) in &f.metadata {
        w.add_kv(k.clone(), v.clone());
    }
    for t in &f.tensors {
        if let Err(e) = w.add_tensor(t.name.clone(), &t.dims, t.ggml_type) {
            panic!("the writer refuses tensor {:?} the reader accepted: {e}", t.name);
        }
    }
    let out = w
        .write_to(Vec::new(), |i, t, buf| {
            let at = (f.data_offset + f.tensors[i].offset) as usize;
            buf.copy_from_slice(&data[at..at + t.n_bytes as usize]);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("the writer refuses a file the reader accepted: {e}"));
    let g = match GgufFile::from_bytes(&out) {
        Ok(g) => g,
        // Packed at an alignment below ggml's 32 bytes, a tensor may land where llama.cpp cannot
        // map it, though the original placed every tensor on 32 bytes.
        Err(GgufError::LlamaAbort { .. }) if f.alignment < 32 && !f.tensors.is_empty() => return,
        Err(e) => panic!("the re-written file does not read back: {e}"),
    };
    assert_eq!(g.metadata.len(), f.metadata.len());
    for ((ka, va), (kb, vb)) in f.metadata.iter().zip(&g.metadata) {
        assert_eq!(ka, kb);
        assert!(same_gguf_value(va, vb), "{ka}: {va:?} became {vb:?}");
    }
    assert_eq!(g.alignment, f.alignment);
    // The writer packs the data in table order, so only the offsets may differ.
    let strip = |t: &TensorInfo| (t.name.clone(), t.dims.clone(), t.ggml_type, t.n_bytes);
    assert_eq!(g.tensors.iter().map(strip).collect::<Vec<_>>(), f.tensors.iter().map(strip).collect::<Vec<_>>());
    assert_eq!(g.tensors, w.tensors());
    gguf_layout(&g, out.len() as u64);
    for (a, b) in f.tensors.iter().zip(&g.tensors) {
        let (sa, sb) = ((f.data_offset + a.offset) as usize, (g.data_offset + b.offset) as usize);
        let n = a.n_bytes as usize;
        assert!(data[sa..sa + n] == out[sb..sb + n], "data of {:?} changed", a.name);
    }
}

/// What every accepted file must satisfy, whatever its bytes.
pub fn gguf_layout(f: &GgufFile, len: u64) {
    assert!(f.version == 2 || f.version == 3);
    assert!(f.alignment.is_power_of_two());
    assert_eq!(f.data_offset % f.alignment, 0);
    assert_eq!(f.file_size, len);
    if !f.tensors.is_empty() {
        assert!(f.data_offset <= len, "data section at {} of {len} bytes", f.data_offset);
    }
    let mut spans = Vec::with_capacity(f.tensors.len());
    for t in &f.tensors {
        assert!(!t.name.is_empty() && t.name.len() <= benchkit::gguf::MAX_TENSOR_NAME);
        assert!((1..=benchkit::gguf::MAX_DIMS).contains(&t.dims.len()) && t.dims.iter().all(|&d| d > 0));
        let row = t.ggml_type.row_bytes(t.dims[0]).expect("ne0 is a multiple of the block size");
        assert_eq!(t.dims[1..].iter().try_fold(row, |a, &d| a.checked_mul(d)), Some(t.n_bytes), "{}", t.name);
        assert_eq!(t.offset % f.alignment, 0, "{}", t.name);
        let start = f.data_offset + t.offset;
        assert!(start.checked_add(t.n_bytes).is_some_and(|end| end <= len), "{} beyond the end", t.name);
        spans.push((t.offset, t.offset + t.n_bytes));
    }
    spans.sort_unstable();
    assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "overlapping tensors");
    let mut names: Vec<&str> = f.tensors.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    assert!(names.windows(2).all(|w| w[0] != w[1]), "duplicate tensor names");
    let mut keys: Vec<&str> = f.metadata.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    assert!(keys.windows(2).all(|w| w[0] != w[1]) && keys.iter().all(|k| !k.is_empty()));
}

/// Equality that tells NaNs apart by their bits, as the file stores them (for the `gguf` and
/// `gguf_roundtrip` targets).
pub fn same_gguf_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::F32(x), Value::F32(y)) => x.to_bits() == y.to_bits(),
        (Value::F64(x), Value::F64(y)) => x.to_bits() == y.to_bits(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_gguf_value(p, q)),
        _ => a == b,
    }
}
