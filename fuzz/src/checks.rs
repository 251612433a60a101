//! One check per fuzz target: parse the input, assert the properties beyond "no panic".
//! Each panics (a finding) when a property fails.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use benchkit::cli::bench::BenchArgs;
use benchkit::experiment::Experiment;
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
