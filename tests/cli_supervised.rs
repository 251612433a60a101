//! `benchkit bench` supervises by default, re-executing itself as its worker: a point
//! that aborts llama.cpp is a `crashed` record in every output, `--save-jsonl` has every record,
//! and the program exits normally.

use std::process::Command;

/// The `benchkit` binary, running `subcommand`.
fn benchkit(subcommand: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_benchkit"));
    c.arg(subcommand);
    c
}

#[test]
fn llama_bench_records_an_abort_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("run.jsonl");
    let model = benchkit_suite::test_model();
    let out = benchkit("bench")
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
    // A crashed point keeps what was sampled of its worker until the abort.
    for part in ["cpu", "memory", "energy", "gpu"] {
        assert!(saved[0]["telemetry"][part].is_object(), "{part}: {}", saved[0]["telemetry"]);
    }
    assert!(saved[0]["telemetry"]["memory"]["peak_rss_bytes"].as_u64().unwrap() > 0, "{}", saved[0]["telemetry"]);
    assert_eq!(saved[1]["type_k"], "f16");
    assert_eq!(saved[1]["status"], "ok");
    assert!(saved[1]["avg_ts"].as_f64().unwrap() > 0.0);
    assert!(stderr.contains("pp16 crashed: worker killed by SIGABRT"), "{stderr}");
}

/// `benchkit bench -o json`, `benchkit perplexity --json` and `benchkit replay --save-result`
/// describe their runs with the same `provenance` keys.
#[test]
fn every_subcommand_writes_the_same_provenance_keys() {
    let dir = tempfile::tempdir().unwrap();
    let model = benchkit_suite::test_model();
    let m = model.to_str().unwrap();
    let run = |mut c: Command| {
        let out = c.env_remove("BENCHKIT_WORKER_EXE").output().unwrap();
        assert!(out.status.success(), "{c:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let bench: serde_json::Value = {
        let mut c = benchkit("bench");
        c.args(["-m", m, "-p", "8", "-n", "0", "-r", "1", "-o", "json"]);
        serde_json::from_slice(&run(c)).unwrap()
    };
    let text = dir.path().join("text.txt");
    let words: Vec<String> = (0..600).map(|i| format!("word{} and then some more text {i}.", i % 37)).collect();
    std::fs::write(&text, words.join(" ")).unwrap();
    let ppl: serde_json::Value = {
        let mut c = benchkit("perplexity");
        c.args(["-m", m, "-f", text.to_str().unwrap(), "-c", "128", "--chunks", "1", "--json"]);
        serde_json::from_slice(&run(c)).unwrap()
    };
    let result = dir.path().join("replay.json");
    let mut c = benchkit("replay");
    c.args(["-m", m, "--dataset", "synthetic", "--num-prompts", "2", "--synthetic-input", "8"])
        .args(["--synthetic-output", "2", "--slots", "2", "--ctx-per-slot", "64", "--save-result"])
        .arg(&result);
    run(c);
    let replay: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();

    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v["provenance"].as_object().expect("a provenance object").keys().cloned().collect();
        k.sort();
        k
    };
    let (b, p, r) = (keys(&bench[0]), keys(&ppl), keys(&replay));
    assert_eq!(b, p);
    assert_eq!(b, r);
    for v in [&bench[0], &ppl, &replay] {
        let prov = &v["provenance"];
        assert_eq!(prov["schema_version"], benchkit::provenance::SCHEMA_VERSION);
        assert_eq!(prov["model"]["path"], m, "{prov}");
    }
    assert_eq!(ppl["provenance"]["dataset"]["kind"], "text");
    assert_eq!(replay["provenance"]["dataset"]["kind"], "synthetic");
    assert!(replay["provenance"]["seeds"]["workload"].is_u64());
    // vLLM's keys stay at the top of the replay result.
    assert!(replay["request_throughput"].is_f64() && replay["num_prompts"] == 2);
}

/// A records file that stops taking writes (`/dev/full`: every write fails with ENOSPC) costs
/// the records, not the result: the replay finishes, says so on stderr, and its result names
/// the failure.
#[test]
fn replay_keeps_its_result_when_the_records_file_fails() {
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("replay.json");
    let model = benchkit_suite::test_model();
    let out = benchkit("replay")
        .args(["-m", model.to_str().unwrap(), "--dataset", "synthetic", "--num-prompts", "2"])
        .args(["--synthetic-input", "8", "--synthetic-output", "2", "--slots", "2", "--ctx-per-slot", "64"])
        .args(["--save-requests", "/dev/full", "--save-result"])
        .arg(&result)
        .env_remove("BENCHKIT_WORKER_EXE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    assert!(stderr.contains("cannot write request records"), "{stderr}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert_eq!(r["completed"], 2, "{r}");
    let file = &r["provenance"]["settings"]["requests_file"];
    assert_eq!(file["path"], "/dev/full");
    assert!(file["error"].as_str().unwrap().contains("No space left"), "{file}");
}

/// Every record of `benchkit bench`, in `-o json` and in `--save-jsonl`, supervised or in-process,
/// carries `telemetry` with CPU time, memory and context switches measured, and energy and GPU
/// measured or with a reason; `--telemetry-series` has the samples and phase marks.
#[test]
fn bench_records_carry_telemetry() {
    let dir = tempfile::tempdir().unwrap();
    let model = benchkit_suite::test_model();
    for mode in ["supervised", "in-process"] {
        let (jsonl, series) = (dir.path().join(format!("{mode}.jsonl")), dir.path().join(format!("{mode}.series")));
        let mut c = benchkit("bench");
        c.args(["-m", model.to_str().unwrap(), "-p", "32", "-n", "8", "-r", "2", "-t", "2", "-o", "json"])
            .args(["--save-jsonl", jsonl.to_str().unwrap(), "--telemetry-series", series.to_str().unwrap()])
            .args(["--telemetry-interval", "20"])
            .env_remove("BENCHKIT_WORKER_EXE");
        if mode == "in-process" {
            c.arg("--in-process");
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{mode}: {}", String::from_utf8_lossy(&out.stderr));
        let stdout: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        let saved: Vec<serde_json::Value> =
            std::fs::read_to_string(&jsonl).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!((stdout.len(), saved.len()), (2, 2), "{mode}");
        for r in stdout.iter().chain(&saved) {
            let t = &r["telemetry"];
            let cpu = &t["cpu"];
            let cpu_s = cpu["user_s"].as_f64().unwrap() + cpu["system_s"].as_f64().unwrap();
            assert!(cpu_s > 0.0 && cpu["utilization"].as_f64().unwrap() > 0.0, "{mode}: {t}");
            let switches =
                cpu["voluntary_ctxt_switches"].as_u64().unwrap() + cpu["nonvoluntary_ctxt_switches"].as_u64().unwrap();
            assert!(switches > 0, "{mode}: {t}");
            assert!(t["memory"]["peak_rss_bytes"].as_u64().unwrap() > 100 << 20, "the model is resident: {t}");
            assert_eq!(t["window"]["from"], "repetition", "{mode}: warmup and load are outside the window");
            for part in ["energy", "gpu"] {
                let v = &t[part];
                let reason = v["unavailable"].as_str();
                assert!(
                    reason.is_some_and(|r| !r.is_empty()) || v.as_object().is_some_and(|o| !o.is_empty()),
                    "{part}: {v}"
                );
            }
            if let Some(j) = t["energy"]["j_per_token"].as_f64() {
                assert!(j > 0.0, "{t}");
            }
        }
        let lines: Vec<serde_json::Value> =
            std::fs::read_to_string(&series).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let reps = lines.iter().filter(|l| l["kind"] == "mark" && l["phase"] == "repetition").count();
        assert_eq!(reps, 4, "{mode}: 2 points x 2 repetitions");
        assert!(lines.iter().filter(|l| l["kind"] == "sample").count() > 10, "{mode}");
    }
}
