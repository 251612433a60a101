use super::json::fmt_g6;
use super::md::MD_OPTIONAL;
use super::*;
use crate::bench::record::{field, Status, LLAMA_BENCH_FIELDS};
use std::collections::BTreeSet;

/// llama-bench's `test::get_fields()`, as its csv header writes it.
const LLAMA_BENCH_CSV_HEADER: &str = "build_commit,build_number,cpu_info,gpu_info,backends,model_filename,\
model_type,model_size,model_n_params,n_batch,n_ubatch,n_threads,cpu_mask,cpu_strict,poll,type_k,type_v,\
n_gpu_layers,n_cpu_moe,split_mode,main_gpu,no_kv_offload,flash_attn,devices,tensor_split,tensor_buft_overrides,\
load_mode,lazy_mode,embeddings,no_op_offload,no_host,repack,fit_target,fit_min_ctx,n_prompt,n_gen,n_depth,\
test_time,avg_ns,stddev_ns,avg_ts,stddev_ts";

/// Build and system info, collected once: `SystemInfo::collect()` calls llama.cpp's
/// `llama_print_system_info()`, which fills a function-static string and so must not run
/// on several test threads at once.
fn build_and_system() -> (crate::BuildInfo, crate::SystemInfo) {
    static INFO: std::sync::OnceLock<(crate::BuildInfo, crate::SystemInfo)> = std::sync::OnceLock::new();
    INFO.get_or_init(|| {
        crate::Backend::init().unwrap();
        (crate::BuildInfo::current(), crate::SystemInfo::collect())
    })
    .clone()
}

/// A record of a default llama-bench CPU run, every field filled.
fn record(n_prompt: u32, n_gen: u32) -> BenchRecord {
    let (build, system) = build_and_system();
    let n_tokens = f64::from(n_prompt + n_gen);
    let samples_ns = vec![1_000_000_000, 1_100_000_000, 1_050_000_000];
    let samples_ts: Vec<f64> = samples_ns.iter().map(|&ns| 1e9 * n_tokens / ns as f64).collect();
    let avg_ts = samples_ts.iter().sum::<f64>() / 3.0;
    let var = samples_ts.iter().map(|x| (x - avg_ts).powi(2)).sum::<f64>() / 2.0;
    BenchRecord {
        build_commit: "abc1234".into(),
        build_number: 6543,
        cpu_info: "AMD EPYC \"Genoa\" 9654 'x'".into(),
        gpu_info: String::new(),
        backends: "CPU".into(),
        model_filename: "models/llama 1b.gguf".into(),
        model_type: "llama 1B Q4_0".into(),
        model_size: 637_000_000,
        model_n_params: 1_100_048_384,
        n_batch: 2048,
        n_ubatch: 512,
        n_threads: crate::system::default_threads() as u32,
        cpu_mask: "0x0".into(),
        cpu_strict: false,
        poll: 50,
        type_k: "f16".into(),
        type_v: "f16".into(),
        n_gpu_layers: 99,
        n_cpu_moe: 0,
        split_mode: "layer".into(),
        main_gpu: 0,
        no_kv_offload: false,
        flash_attn: -1,
        devices: "auto".into(),
        tensor_split: "0.00".into(),
        tensor_buft_overrides: "none".into(),
        load_mode: "auto".into(),
        lazy_mode: "auto".into(),
        embeddings: false,
        no_op_offload: 0,
        no_host: false,
        repack: true,
        fit_target: 0,
        fit_min_ctx: 0,
        n_prompt,
        n_gen,
        n_depth: 0,
        test_time: "2025-01-01T00:00:00Z".into(),
        avg_ns: 1_050_000_000,
        stddev_ns: 50_000_000,
        avg_ts,
        stddev_ts: var.sqrt(),
        samples_ns,
        samples_ts,
        status: Status::Ok,
        error: None,
        crash: None,
        test: crate::bench::Test { n_prompt, n_gen, n_depth: 0 }.name(),
        repetitions: 3,
        warmup: true,
        prio: 0,
        n_ctx: n_prompt + n_gen,
        seed: 42,
        model_file_bytes: 637_500_000,
        model_arch: "llama".into(),
        telemetry: crate::telemetry::Telemetry::default(),
        provenance: crate::Provenance::with(build, system).seed("prompt_tokens", 42),
    }
}

/// pp512, tg128, pp512+tg128 @ d512, and a failed tg128.
fn records() -> Vec<BenchRecord> {
    let mut depth = record(512, 128);
    depth.n_depth = 512;
    depth.test = "pp512+tg128 @ d512".into();
    let mut failed = record(0, 128);
    failed.status = Status::Failed;
    failed.error = Some("context | too \"large\"\nfor this".into());
    failed.avg_ts = 12.5;
    vec![record(512, 0), record(0, 128), depth, failed]
}

/// Splits one csv line written with every value quoted.
fn csv_split(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        assert_eq!(c, '"', "unquoted csv value in {line}");
        let mut v = String::new();
        loop {
            match chars.next().expect("unterminated csv value") {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    v.push('"');
                }
                '"' => break,
                c => v.push(c),
            }
        }
        out.push(v);
        match chars.next() {
            Some(',') | None => {}
            Some(c) => panic!("unexpected {c:?} after a csv value"),
        }
    }
    out
}

#[test]
fn csv_has_llama_bench_columns_quoted() {
    let out = to_string(&records(), OutputFormat::Csv);
    let lines: Vec<&str> = out.lines().collect();
    // The failed record writes no row.
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0], LLAMA_BENCH_CSV_HEADER);
    assert_eq!(lines[0], LLAMA_BENCH_FIELDS.join(","));
    assert!(
        lines[1].starts_with("\"abc1234\",\"6543\",\"AMD EPYC \"\"Genoa\"\" 9654 'x'\",\"\",\"CPU\","),
        "{}",
        lines[1]
    );
    for line in &lines[1..] {
        let vals = csv_split(line);
        assert_eq!(vals.len(), LLAMA_BENCH_FIELDS.len(), "{line}");
        assert_eq!(vals[2], "AMD EPYC \"Genoa\" 9654 'x'");
        assert_eq!(vals[13], "0", "cpu_strict as 0/1");
    }
    let pp = csv_split(lines[1]);
    assert_eq!(pp[40], format!("{:.6}", records()[0].avg_ts));
    assert!(pp[40].split_once('.').unwrap().1.len() == 6);
    assert!(lines.iter().all(|l| !l.contains("0.000000\",\"0.000000")), "no zero-timing rows");
}

#[test]
fn json_is_valid_typed_and_ordered() {
    let rs = records();
    let out = to_string(&rs, OutputFormat::Json);
    assert!(out.starts_with("[\n  {\n    \"build_commit\": \"abc1234\",\n    \"build_number\": 6543,\n"), "{out}");
    assert!(out.ends_with("\n  }\n]\n"));
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 4);
    // Key order, from the raw text of the first object.
    let first = &out[..out.find("\n  }").unwrap()];
    let keys: Vec<&str> = first
        .lines()
        .filter_map(|l| l.strip_prefix("    \"").and_then(|l| l.split_once('"')).map(|(k, _)| k))
        .collect();
    let expected: Vec<&str> = LLAMA_BENCH_FIELDS
        .iter()
        .copied()
        .chain(["samples_ns", "samples_ts"])
        .chain(super::json::BENCHKIT_FIELDS.iter().map(|(name, _)| *name))
        .collect();
    assert_eq!(keys, expected);
    // Every field of the record is there (fails when BenchRecord gains a field not written).
    let serde_keys: BTreeSet<String> =
        serde_json::to_value(&rs[0]).unwrap().as_object().unwrap().keys().cloned().collect();
    let our_keys: BTreeSet<String> = arr[0].as_object().unwrap().keys().cloned().collect();
    assert_eq!(our_keys, serde_keys);
    // Types.
    let o = &arr[0];
    assert_eq!(o["cpu_strict"], serde_json::Value::Bool(false));
    assert_eq!(o["repack"], serde_json::Value::Bool(true));
    assert!(o["avg_ts"].is_f64());
    assert!(o["build_number"].is_u64());
    assert_eq!(o["n_gpu_layers"], 99);
    assert_eq!(o["flash_attn"], -1);
    assert_eq!(o["cpu_info"], "AMD EPYC \"Genoa\" 9654 'x'");
    assert_eq!(o["samples_ns"].as_array().unwrap().len(), 3);
    assert_eq!(o["samples_ts"].as_array().unwrap().len(), 3);
    assert!((o["samples_ts"][0].as_f64().unwrap() - 512.0).abs() < 1e-9);
    assert!(o["provenance"]["build"]["backends"].is_array());
    assert!(o["provenance"]["system"]["cpu_info"].is_string());
    assert_eq!(o["provenance"]["seeds"]["prompt_tokens"], 42);
    assert_eq!(o["status"], "ok");
    assert!(o["error"].is_null());
    assert_eq!(arr[2]["n_depth"], 512);
    assert_eq!(arr[3]["status"], "failed");
    assert_eq!(arr[3]["error"], "context | too \"large\"\nfor this");
    assert_eq!(arr[3]["avg_ts"].as_f64(), Some(0.0));
    // The record round-trips through serde for benchkit's own fields.
    assert_eq!(serde_json::from_value::<crate::Provenance>(o["provenance"].clone()).unwrap(), rs[0].provenance);
}

#[test]
fn jsonl_one_parsable_object_per_line() {
    let rs = records();
    let out = to_string(&rs, OutputFormat::Jsonl);
    let json: serde_json::Value = serde_json::from_str(&to_string(&rs, OutputFormat::Json)).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4);
    for (i, line) in lines.iter().enumerate() {
        assert!(line.starts_with("{\"build_commit\": \"abc1234\", \"build_number\": 6543, "), "{line}");
        assert!(line.contains(" ],\"samples_ts\": [ "), "{line}");
        let o: serde_json::Value = serde_json::from_str(line).expect("valid JSON line");
        assert_eq!(o, json[i], "jsonl and json carry the same record");
    }
}

#[test]
fn samples_ts_formatted_like_cpp_ostream() {
    for (x, s) in [
        (465.454545, "465.455"),
        (512.0, "512"),
        (0.5, "0.5"),
        (1e6, "1e+06"),
        (1_234_567.0, "1.23457e+06"),
        (123_456.7, "123457"),
        (999_999.7, "1e+06"),
        (0.000_123_456_7, "0.000123457"),
        (1.234e-5, "1.234e-05"),
        (0.0, "0"),
        (f64::INFINITY, "null"),
    ] {
        assert_eq!(fmt_g6(x), s, "{x}");
    }
}

#[test]
fn sql_loads_into_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let sql = dir.path().join("bench.sql");
    std::fs::write(&sql, to_string(&records(), OutputFormat::Sql)).unwrap();
    let text = std::fs::read_to_string(&sql).unwrap();
    assert!(
        text.starts_with("CREATE TABLE IF NOT EXISTS llama_bench (\n  build_commit TEXT,\n  build_number INTEGER,\n")
    );
    assert!(text
        .contains("\n  avg_ts REAL,\n  stddev_ts REAL\n);\n\nINSERT INTO llama_bench (build_commit, build_number, "));
    let db = dir.path().join("bench.db");
    let sqlite = |args: &[&str]| {
        let out = std::process::Command::new("sqlite3")
            .arg(&db)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("the sqlite3 CLI is needed for this test (apt-get install sqlite3): {e}"));
        assert!(out.status.success(), "sqlite3 failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    sqlite(&[&format!(".read {}", sql.display())]);
    // Loading twice adds rows to the existing table, as with llama-bench.
    sqlite(&[&format!(".read {}", sql.display())]);
    assert_eq!(sqlite(&["SELECT count(*) FROM llama_bench"]), "6");
    assert!(
        text.contains("\n-- benchkit: tg128 (") && text.contains(") failed: context | too \"large\" for this\n"),
        "{text}"
    );
    assert_eq!(
        sqlite(&[
            "SELECT cpu_info, n_prompt, typeof(avg_ts), typeof(n_batch) FROM llama_bench WHERE n_gen = 0 LIMIT 1"
        ]),
        "AMD EPYC \"Genoa\" 9654 'x'|512|real|integer"
    );
    assert_eq!(sqlite(&["SELECT count(*) FROM llama_bench WHERE avg_ts = 0"]), "0");
    assert_eq!(sqlite(&["SELECT type FROM pragma_table_info('llama_bench') WHERE name = 'cpu_strict'"]), "INTEGER");
}

#[test]
fn md_matches_llama_bench_layout() {
    let out = to_string(&records(), OutputFormat::Md);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "| model                          |       size |     params | backend    | threads |            test |                  t/s |"
    );
    assert_eq!(
        lines[1],
        "| ------------------------------ | ---------: | ---------: | ---------- | ------: | --------------: | -------------------: |"
    );
    let t = crate::system::default_threads();
    let pp = &records()[0];
    let ts = format!("{:.2} ± {:.2}", pp.avg_ts, pp.stddev_ts);
    assert_eq!(
        lines[2],
        format!("| llama 1B Q4_0                  | 607.49 MiB |     1.10 B | CPU        | {t:>7} |           pp512 | {ts:>20} |")
    );
    assert!(lines[3].contains("|           tg128 |"), "{}", lines[3]);
    assert!(lines[4].contains("| pp512+tg128 @ d512 |"), "{}", lines[4]);
    assert!(lines[2].contains(" ± "));
    // Every ok row is as wide (in characters) as the header.
    for l in &lines[2..4] {
        assert_eq!(l.chars().count(), lines[0].chars().count(), "{l}");
    }
    assert!(lines[5].contains("| failed: context \\| too \"large\" for this |"), "{}", lines[5]);
    assert_eq!(lines.len(), 8);
    assert_eq!(lines[6], "");
    assert_eq!(lines[7], "build: abc1234 (6543)");
}

#[test]
fn md_columns_follow_llama_bench_rules() {
    let header = |rs: &[BenchRecord]| to_string(rs, OutputFormat::Md).lines().next().unwrap().to_string();
    // n_batch varies: its column appears after threads.
    let mut rs = vec![record(512, 0), record(512, 0)];
    rs[1].n_batch = 512;
    let h = header(&rs);
    assert!(h.contains("| threads | n_batch |            test |"), "{h}");
    let out = to_string(&rs, OutputFormat::Md);
    assert!(out.lines().nth(1).unwrap().contains("| ------: | ------: |"));
    assert!(out.lines().nth(3).unwrap().contains(" |     512 |"), "{out}");
    // One non-default value also shows the column; defaults do not.
    let mut one = record(512, 0);
    one.n_ubatch = 256;
    one.type_k = "q8_0".into();
    one.flash_attn = 1;
    assert!(header(&[one]).contains("| threads | n_ubatch | type_k |  fa |            test |"));
    // A GPU backend shows ngl, and threads only when not default.
    let mut gpu = record(512, 0);
    gpu.backends = "CPU,CUDA".into();
    assert_eq!(
        header(&[gpu.clone()]),
        "| model                          |       size |     params | backend    | ngl |            test |                  t/s |"
    );
    assert!(to_string(&[gpu.clone()], OutputFormat::Md).lines().nth(2).unwrap().contains("| CUDA       |  99 |"));
    gpu.n_threads += 1;
    assert!(header(&[gpu]).contains("| ngl | threads |"));
    // Size in GiB and params in M as llama-bench prints them.
    let mut big = record(512, 0);
    big.model_size = 4_000_000_000;
    big.model_n_params = 270_000_000;
    let row = to_string(&[big], OutputFormat::Md);
    assert!(row.contains("|   3.73 GiB |   270.00 M |"), "{row}");
    // Default columns without records: the plain CPU table.
    assert_eq!(MdColumns::default().fields(), ["model", "size", "params", "backend", "n_threads", "test", "t/s"]);
}

#[test]
fn writes_stream_record_by_record() {
    let rs = records();
    for format in OutputFormat::ALL {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out, format, MdColumns::from_records(&rs)).unwrap();
        w.write_record(&rs[0]).unwrap();
        w.write_record(&rs[1]).unwrap();
        // Never finished nor dropped: a sweep killed outright.
        std::mem::forget(w);
        let partial = String::from_utf8(out).unwrap();
        let (pp, tg) = match format {
            OutputFormat::Md => ("pp512 |", "tg128 |"),
            OutputFormat::Sql => ("'512', '0', '0', ", "'0', '128', '0', "),
            OutputFormat::Csv => ("\"512\",\"0\",\"0\",", "\"0\",\"128\",\"0\","),
            _ => ("\"test\": \"pp512\"", "\"test\": \"tg128\""),
        };
        assert!(partial.contains(pp) && partial.contains(tg), "{format}: {partial}");
        if format == OutputFormat::Json {
            // Only the closing bracket is missing.
            let v: serde_json::Value = serde_json::from_str(&format!("{partial}\n]\n")).unwrap();
            assert_eq!(v.as_array().unwrap().len(), 2);
        }
    }
}

#[test]
fn md_columns_are_known_fields() {
    const OWN: [&str; 6] = ["model", "size", "params", "backend", "test", "t/s"];
    for (name, _) in MD_OPTIONAL {
        assert!(field(name).is_some(), "{name}");
    }
    let mut r = records()[0].clone();
    r.n_gpu_layers = 99;
    r.backends = "CUDA".into();
    for c in MdColumns::from_records(&[r]).fields() {
        assert!(OWN.contains(&c) || field(c).is_some(), "{c}");
    }
}

#[test]
fn a_writer_finishes_itself() {
    let rs = records();
    for format in OutputFormat::ALL {
        let mut dropped = Vec::new();
        {
            let mut w = Writer::new(&mut dropped, format, MdColumns::from_records(&rs)).unwrap();
            w.write_record(&rs[0]).unwrap();
            w.write_record(&rs[1]).unwrap();
        }
        // Dropping writes what finish() writes.
        assert_eq!(String::from_utf8(dropped).unwrap(), to_string(&rs[..2], format), "{format}");
    }
    let mut out = Vec::new();
    Writer::new(&mut out, OutputFormat::Json, MdColumns::default()).unwrap().finish().unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "[\n\n]\n");
}

#[test]
fn format_names() {
    for f in OutputFormat::ALL {
        assert_eq!(f.name().parse::<OutputFormat>(), Ok(f));
        assert_eq!(OutputFormat::from_name(&f.to_string()), Some(f));
    }
    assert!("xml".parse::<OutputFormat>().is_err());
    assert_eq!(serde_json::to_string(&OutputFormat::Jsonl).unwrap(), "\"jsonl\"");
    // Empty runs still give valid documents.
    assert!(serde_json::from_str::<serde_json::Value>(&to_string(&[], OutputFormat::Json)).is_ok());
    assert_eq!(to_string(&[], OutputFormat::Csv).trim_end(), LLAMA_BENCH_CSV_HEADER);
}
