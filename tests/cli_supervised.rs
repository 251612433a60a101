//! The llama_bench front end supervises by default, re-executing itself as its worker: a point
//! that aborts llama.cpp is a `crashed` record in every output, `--save-jsonl` has every record,
//! and the program exits normally.

use std::path::PathBuf;
use std::process::Command;

/// The example binaries, next to the workspace's binaries: `cargo build --release --examples`
/// (scripts/test.sh does it first; `cargo test --all-targets` builds examples only as harnesses).
fn example(name: &str) -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_benchkit-worker"));
    let path = bin.parent().unwrap().join("examples").join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --release --examples` first", path.display());
    path
}

#[test]
fn llama_bench_records_an_abort_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("run.jsonl");
    let model = benchkit_suite::test_model();
    let out = Command::new(example("llama_bench"))
        .args(["-m", model.to_str().unwrap(), "-p", "16", "-n", "0", "-r", "1", "-ctk", "iq2_xxs,f16", "-fa", "1"])
        .args(["-o", "json", "--save-jsonl", jsonl.to_str().unwrap()])
        .env_remove("BENCHKIT_WORKER_EXE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let statuses: Vec<(&str, &str)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["type_k"].as_str().unwrap(), r["status"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(statuses.len(), 2, "{json}");
    let saved: Vec<serde_json::Value> =
        std::fs::read_to_string(&jsonl).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(saved.len(), 2);
    assert_eq!(saved[0]["type_k"], "iq2_xxs");
    assert_eq!(saved[0]["status"], "crashed");
    assert_eq!(saved[0]["crash"]["signal"], "SIGABRT");
    assert!(saved[0]["crash"]["abort_message"].as_str().unwrap().contains("SET_ROWS"));
    assert_eq!(saved[1]["type_k"], "f16");
    assert_eq!(saved[1]["status"], "ok");
    assert!(saved[1]["avg_ts"].as_f64().unwrap() > 0.0);
    assert!(stderr.contains("pp16 crashed: worker killed by SIGABRT"), "{stderr}");
}
