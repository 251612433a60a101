//! Parsing time must grow linearly with the input: each parser that reads untrusted input is
//! timed on inputs of n, 4n and 16n bytes, interleaved round after round so that machine noise
//! falls on every size alike, and the figure printed is the ratio of time per byte at 16n to
//! time per byte at n (1.0 is linear; a quadratic parser shows about 16). `cargo bench --bench
//! parse_scaling` measures; under `cargo test` (no `--bench`) one short round checks that it
//! runs. The fuzz targets bound the same parsers' time per input with libFuzzer's `-timeout`.

use std::hint::black_box;
use std::io::BufReader;
use std::path::Path;
use std::time::Instant;

use benchkit::gguf::GgufFile;
use benchkit::replay::http::read_stream;
use benchkit::replay::workload::{parse_trace, read_sharegpt};
use benchkit::telemetry::prometheus::Exposition;

/// A parser under test and its input of about `n` bytes, made of many small records (the
/// shape that exposes per-record costs growing with what was read before).
struct Case {
    name: &'static str,
    make: fn(usize) -> Vec<u8>,
    parse: fn(&[u8]),
}

fn repeat_to(n: usize, head: &str, item: impl Fn(usize) -> String, tail: &str) -> Vec<u8> {
    let mut s = String::from(head);
    let mut i = 0;
    while s.len() < n {
        s.push_str(&item(i));
        i += 1;
    }
    s.push_str(tail);
    s.into_bytes()
}

fn sharegpt(n: usize) -> Vec<u8> {
    repeat_to(
        n,
        "[",
        |i| {
            format!(
                r#"{{"id":"r{i}","conversations":[{{"from":"human","value":"q \"{i}\""}},{{"from":"gpt","value":"a"}}]}},"#
            )
        },
        "{}]",
    )
}

fn trace(n: usize) -> Vec<u8> {
    repeat_to(
        n,
        "",
        |i| format!("{{\"timestamp\": {i}, \"input_length\": 3, \"output_length\": 2, \"hash_ids\": [{i}]}}\n"),
        "",
    )
}

fn sse(n: usize) -> Vec<u8> {
    repeat_to(n, "", |_| "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n".to_string(), "data: [DONE]\n\n")
}

fn metrics(n: usize) -> Vec<u8> {
    repeat_to(n, "", |i| format!("# TYPE m{i}_total counter\nm{i}_total{{a=\"{i}\",b=\"x\"}} {i}\n"), "")
}

fn gguf(n: usize) -> Vec<u8> {
    let mut w = benchkit::gguf::GgufWriter::new();
    w.add_kv("general.architecture", benchkit::gguf::Value::String("llama".into()));
    let mut i = 0;
    while w.metadata().len() * 40 < n {
        w.add_kv(format!("k.{i}"), benchkit::gguf::Value::U32(i as u32));
        i += 1;
    }
    let dir = std::env::temp_dir().join(format!("parse_scaling_{}_{n}.gguf", std::process::id()));
    w.write(&dir, |_, _, _| Ok(())).expect("write a GGUF file");
    let bytes = std::fs::read(&dir).expect("read it back");
    let _ = std::fs::remove_file(&dir);
    bytes
}

const CASES: &[Case] = &[
    Case {
        name: "sharegpt",
        make: sharegpt,
        parse: |b| drop(black_box(read_sharegpt(BufReader::new(b), Path::new("x")))),
    },
    Case { name: "trace", make: trace, parse: |b| drop(black_box(parse_trace(b, Path::new("x")))) },
    Case { name: "sse", make: sse, parse: |b| drop(black_box(read_stream(&[b]))) },
    Case {
        name: "prometheus",
        make: metrics,
        parse: |b| drop(black_box(Exposition::parse(std::str::from_utf8(b).expect("utf-8")))),
    },
    Case { name: "gguf", make: gguf, parse: |b| drop(black_box(GgufFile::from_bytes(b))) },
];

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let (base, rounds) = if measuring { (64 << 10, 15) } else { (4 << 10, 1) };
    let sizes = [base, 4 * base, 16 * base];
    println!("{:<12} {:>10} {:>14} {:>14} {:>10}", "parser", "n", "ns/byte (n)", "ns/byte (16n)", "ratio");
    let mut worst: f64 = 0.0;
    for case in CASES {
        let inputs: Vec<Vec<u8>> = sizes.iter().map(|&n| (case.make)(n)).collect();
        let mut per_byte: Vec<Vec<f64>> = vec![Vec::new(); sizes.len()];
        for _ in 0..rounds {
            for (k, input) in inputs.iter().enumerate() {
                let t = Instant::now();
                (case.parse)(input);
                per_byte[k].push(t.elapsed().as_nanos() as f64 / input.len() as f64);
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let first = median(&mut per_byte[0]);
        let last = median(&mut per_byte[sizes.len() - 1]);
        let ratio = last / first;
        worst = worst.max(ratio);
        println!("{:<12} {:>10} {:>14.2} {:>14.2} {:>10.2}", case.name, base, first, last, ratio);
    }
    if measuring {
        println!("worst ratio {worst:.2} (linear: about 1; quadratic: about 16)");
    }
}
