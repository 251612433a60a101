//! The store from the command line, on the real model: `--store` on every subcommand that
//! produces results, records stored as they are produced (a killed sweep keeps its finished
//! records), `benchkit compare` on two stored runs and on imported llama-bench history, import
//! and export.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use benchkit::store::{Filter, Store};

/// The tests here measure: one at a time, so that no test's runs share the cores with
/// another's (cargo runs a file's tests in parallel).
static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn measuring() -> std::sync::MutexGuard<'static, ()> {
    MEASURING.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn benchkit(subcommand: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_benchkit"));
    c.arg(subcommand).env_remove("BENCHKIT_WORKER_EXE").env_remove("BENCHKIT_STORE");
    c
}

fn ok(mut c: Command) -> Output {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{c:?} exited {:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    out
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn model() -> String {
    benchkit_suite::test_model().to_str().unwrap().to_string()
}

fn bench(db: &Path, args: &[&str]) -> Output {
    let mut c = benchkit("bench");
    c.args(["-m", &model(), "-o", "json", "--store", db.to_str().unwrap()]).args(args);
    ok(c)
}

/// The issue's first check: two stored runs (threads 1 and 2) compare with a CI, a p-value and
/// a verdict, and `--fail-on change` exits 2 exactly when a row changed.
#[test]
fn two_stored_runs_compare_with_ci_p_and_verdict() {
    let _serial = measuring();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results.db");
    let common = ["-p", "64", "-n", "8", "-r", "5"];
    let one = bench(&db, &[&common[..], &["-t", "1", "--label", "one thread"]].concat());
    bench(&db, &[&common[..], &["-t", "2"]].concat());
    // What went to stdout is what was stored.
    let printed = json(&one);
    let store = Store::open_read_only(db.to_str().unwrap()).unwrap();
    let runs = store.runs(&Filter::all()).unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r.meta.status == "ok" && r.n_records == 2), "{runs:?}");
    assert_eq!(runs[0].meta.label.as_deref(), Some("one thread"));
    let stored = store.entries(&Filter::parse("run=1").unwrap()).unwrap();
    assert_eq!(stored[0].record.metrics["ts"].samples.len(), 5);
    // The output prints avg_ts rounded as llama-bench does; the store keeps the samples' mean.
    let (mean, avg_ts) = (stored[0].record.metrics["ts"].mean.unwrap(), printed[0]["avg_ts"].as_f64().unwrap());
    assert!((mean - avg_ts).abs() < 1e-5 * avg_ts, "{mean} vs {avg_ts}");
    assert_eq!(stored[0].run.meta.build_commit, printed[0]["build_commit"].as_str().unwrap());

    let mut c = benchkit("compare");
    c.args(["--store", db.to_str().unwrap(), "-b", "n_threads=1", "-c", "n_threads=2", "-o", "json"]);
    let cmp = json(&ok(c));
    let rows = cmp["rows"].as_array().unwrap();
    let tests: Vec<&str> = rows.iter().map(|r| r["test"].as_str().unwrap()).collect();
    assert_eq!(tests, ["pp64", "tg8"], "{cmp}");
    for r in rows {
        let ratio = r["ratio"].as_f64().unwrap();
        let (lo, hi) = (r["ci"][0].as_f64().unwrap(), r["ci"][1].as_f64().unwrap());
        assert!(lo <= ratio && ratio <= hi && lo > 0.0, "{r}");
        let p = r["p"].as_f64().unwrap();
        assert!(p > 0.0 && p <= 1.0, "{r}");
        assert!(["improvement", "regression", "no_change"].contains(&r["verdict"].as_str().unwrap()), "{r}");
        assert_eq!((r["baseline"]["n"].as_u64(), r["candidate"]["n"].as_u64()), (Some(5), Some(5)));
    }
    assert_eq!(cmp["baseline_runs"], serde_json::json!([1]));
    assert_eq!(cmp["candidate_runs"], serde_json::json!([2]));

    let changed = rows.iter().any(|r| ["improvement", "regression"].contains(&r["verdict"].as_str().unwrap()));
    let mut c = benchkit("compare");
    c.args(["--store", db.to_str().unwrap(), "-b", "n_threads=1", "-c", "n_threads=2", "--fail-on", "change"]);
    let out = c.output().unwrap();
    let md = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(if changed { 2 } else { 0 }), "{md}");
    assert!(md.contains("| model | test | metric | baseline | candidate | ratio | 95% CI | p | verdict |"), "{md}");

    // Rankings over the same store: one model, its mean over both runs' pp means, with a CI.
    let mut c = benchkit("rankings");
    c.args(["--store", db.to_str().unwrap(), "--metric", "pp", "--by", "model", "-o", "json"]);
    let ranked = json(&ok(c));
    let r = &ranked["rankings"][0];
    assert_eq!(
        (r["name"].as_str(), r["n_runs"].as_u64(), r["n_records"].as_u64()),
        (Some("gemma3 270M Q4_K - Medium"), Some(2), Some(2)),
        "{ranked}"
    );
    let pp: Vec<f64> = rows
        .iter()
        .filter(|r| r["test"] == "pp64")
        .flat_map(|r| [r["baseline"]["mean"].as_f64().unwrap(), r["candidate"]["mean"].as_f64().unwrap()])
        .collect();
    assert!((r["mean"].as_f64().unwrap() - (pp[0] + pp[1]) / 2.0).abs() < 1e-6 * pp[0], "{ranked}");
    let (lo, hi) = (r["ci"][0].as_f64().unwrap(), r["ci"][1].as_f64().unwrap());
    assert!(lo <= r["mean"].as_f64().unwrap() && r["mean"].as_f64().unwrap() <= hi, "{ranked}");

    // A selection that matches nothing is a clear error, not an empty table.
    let mut c = benchkit("compare");
    c.args(["--store", db.to_str().unwrap(), "-b", "n_threads=1", "-c", "n_threads=8"]);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the candidate (n_threads=8) selects no measured record"));
}

/// Records are stored as they are produced: a sweep killed after some points keeps each
/// finished record whole, and its run says it did not finish.
#[test]
fn a_killed_sweep_keeps_its_finished_records() {
    let _serial = measuring();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results.db");
    let spec = db.to_str().unwrap().to_string();
    let mut child = benchkit("bench")
        .args(["-m", &model(), "-p", "16,32,48,64,80,96,112,128", "-n", "0", "-r", "3", "-t", "1", "-o", "json"])
        .args(["--store", &spec])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let count = || -> usize {
        Store::open_read_only(&spec).ok().and_then(|s| s.entries(&Filter::all()).ok()).map_or(0, |e| e.len())
    };
    let start = Instant::now();
    while count() < 2 {
        assert!(start.elapsed() < Duration::from_secs(120), "no records stored after 120 s");
        assert!(child.try_wait().unwrap().is_none(), "the sweep ended before it was killed");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let store = Store::open_read_only(&spec).unwrap();
    let runs = store.runs(&Filter::all()).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].meta.status, "interrupted");
    assert_eq!(runs[0].meta.error.as_deref(), Some(benchkit::store::INTERRUPTED));
    let entries = store.entries(&Filter::all()).unwrap();
    assert!((2..8).contains(&entries.len()), "{} records", entries.len());
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.record.name, format!("pp{}", 16 * (i + 1)));
        assert_eq!(e.record.status, "ok");
        assert_eq!(e.record.metrics["ts"].samples.len(), 3, "record {i} is whole");
        assert!(e.record.telemetry.is_some());
    }
}

/// The issue's second check: llama-bench's own JSON, imported, compares against benchkit's
/// rows of the same llama.cpp version, joined on every key parameter.
#[test]
fn imported_llama_bench_json_compares_with_benchkits_rows() {
    let _serial = measuring();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results.db");
    let args = ["-m", &model(), "-p", "32", "-n", "4", "-r", "3", "-t", "2", "-o", "json"];
    let out = Command::new(benchkit_suite::llama_bench()).args(args).output().unwrap();
    assert!(out.status.success(), "llama-bench: {}", String::from_utf8_lossy(&out.stderr));
    let lb = dir.path().join("llama-bench.json");
    std::fs::write(&lb, &out.stdout).unwrap();
    let mut c = benchkit("import");
    c.args(["--store", db.to_str().unwrap()]).arg(&lb);
    let imported = ok(c);
    assert!(String::from_utf8_lossy(&imported.stderr).contains("llama-bench.json: 2 record(s) in run 1"));
    bench(&db, &args[2..args.len() - 2]);

    let mut c = benchkit("compare");
    c.args(["--store", db.to_str().unwrap(), "--by", "source", "-b", "llama-bench", "-c", "benchkit", "-o", "json"]);
    let cmp = json(&ok(c));
    let rows = cmp["rows"].as_array().unwrap();
    let tests: Vec<&str> = rows.iter().map(|r| r["test"].as_str().unwrap()).collect();
    assert_eq!(tests, ["pp32", "tg4"], "{cmp}");
    assert_eq!(cmp["unmatched"], serde_json::json!([0, 0]), "{cmp}");
    // Joined on the parameters both record, not on a subset that happens to match.
    let common = cmp["common"].as_object().unwrap();
    for key in ["n_threads", "n_batch", "n_ubatch", "type_k", "type_v", "flash_attn", "machine"] {
        assert!(common.contains_key(key), "{key} not joined on: {cmp}");
    }
    assert_eq!(common["n_threads"], "2");
    // How close the two tools' speeds are is docs/fidelity.md's paired benchmark, not a test
    // on a shared VM; here each row joins three llama-bench samples to three of benchkit's.
    for r in rows {
        assert_eq!((r["baseline"]["n"].as_u64(), r["candidate"]["n"].as_u64()), (Some(3), Some(3)), "{r}");
        assert!(r["ratio"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["ci"].is_array() && r["p"].is_number(), "{r}");
    }
}

/// `--store` on perplexity and replay; export writes what was stored.
#[test]
fn perplexity_and_replay_store_their_results_and_export_reads_them() {
    let _serial = measuring();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results.db");
    let store = db.to_str().unwrap();
    let m = model();
    let text = dir.path().join("text.txt");
    let words: Vec<String> = (0..600).map(|i| format!("word{} and then some more text {i}.", i % 37)).collect();
    std::fs::write(&text, words.join(" ")).unwrap();
    let mut c = benchkit("perplexity");
    c.args(["-m", &m, "-f", text.to_str().unwrap(), "-c", "128", "--chunks", "1", "--json", "--store", store]);
    let ppl = json(&ok(c));
    let mut c = benchkit("replay");
    c.args(["-m", &m, "--dataset", "synthetic", "--num-prompts", "3", "--synthetic-input", "8"]).args([
        "--synthetic-output",
        "4",
        "--slots",
        "2",
        "--ctx-per-slot",
        "64",
        "--store",
        store,
    ]);
    let replay = json(&ok(c));

    let mut c = benchkit("export");
    c.args(["--store", store]);
    let lines: Vec<serde_json::Value> =
        String::from_utf8(ok(c).stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let text = serde_json::to_string(&lines).unwrap();
    assert!(text.contains("\"perplexity\"") && text.contains("\"replay\""), "{text}");
    let s = Store::open_read_only(store).unwrap();
    let e = s.entries(&Filter::parse("kind=perplexity").unwrap()).unwrap();
    assert_eq!(e[0].record.metrics["ppl"].mean, ppl["ppl"].as_f64());
    let e = s.entries(&Filter::parse("kind=replay").unwrap()).unwrap();
    // Per-request latencies are the samples a replay comparison tests.
    assert_eq!(e[0].record.metrics["ttft"].samples.len(), 3);
    assert_eq!(e[0].record.metrics["rps"].mean, replay["request_throughput"].as_f64());

    let csv = dir.path().join("out.csv");
    let mut c = benchkit("export");
    c.args(["--store", store, "--filter", "kind=replay", "-o", csv.to_str().unwrap()]);
    ok(c);
    let csv = std::fs::read_to_string(csv).unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
}

/// A file that does not parse is refused by name and line; the good files beside it are
/// imported, and the exit code says something failed.
#[test]
fn import_refuses_a_broken_file_and_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results.db");
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("benchkit/tests/fixtures/store/llama-bench.jsonl");
    let bad = dir.path().join("cut.jsonl");
    let text = std::fs::read_to_string(&good).unwrap();
    std::fs::write(&bad, &text[..text.len() * 2 / 3]).unwrap();
    let out = benchkit("import").args(["--store", db.to_str().unwrap()]).arg(&good).arg(&bad).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cut.jsonl:") && err.contains("1 of 2 file(s) not imported"), "{err}");
    let s = Store::open_read_only(db.to_str().unwrap()).unwrap();
    let runs = s.runs(&Filter::all()).unwrap();
    assert_eq!(runs.len(), 1, "only the good file: {runs:?}");
    assert_eq!(runs[0].meta.source, "llama-bench");
}
