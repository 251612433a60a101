//! `benchkit placement` end to end on the real model: the issue's comparison (every arm valid
//! with what it asked observed, the sched_ext arm invalid with what is missing), and a fake
//! sched_ext (a fake sysfs directory and a scheduler script) for attach, ejection mid-trial,
//! Ctrl-C and a harness killed mid-trial.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FAKE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benchkit/tests/fixtures/fake_scx.sh");

fn placement() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_benchkit"));
    c.arg("placement").env_remove("BENCHKIT_WORKER_EXE");
    c
}

fn model() -> String {
    benchkit_suite::test_model().display().to_string()
}

/// This machine's kernel (and CI's) lacks sched_ext; the assertions follow the kernel.
fn has_sched_ext() -> bool {
    Path::new("/sys/kernel/sched_ext/state").exists()
}

fn arm<'a>(report: &'a Value, name: &str, metric: &str) -> &'a Value {
    report["arms"].as_array().unwrap().iter().find(|a| a["name"] == name && a["metric"] == metric).unwrap()
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect()
}

#[test]
fn the_issues_comparison_verifies_every_arm() {
    let dir = tempfile::tempdir().unwrap();
    let (json, jsonl) = (dir.path().join("out.json"), dir.path().join("trials.jsonl"));
    let out = placement()
        .args(["--arm", "default", "--arm", "pinned:cpus=0-1,strict=1", "--arm", "batch:policy=batch"])
        .args([
            "--arm",
            "membind:mem=bind:0",
            "--arm",
            "interleave:mem=interleave:all",
            "--arm",
            "lavd:scheduler=\"scx_lavd\"",
        ])
        .args(["--rounds", "2", "--seed", "1", "--json", json.to_str().unwrap(), "--jsonl", jsonl.to_str().unwrap()])
        .args(["--", "bench", "-m", &model(), "-p", "32", "-n", "8", "-t", "2", "-r", "2"])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with("| arm | test | valid | n | median t/s | 95% CI | ratio vs default |"), "{stdout}");
    assert!(stdout.contains("lavd invalid: "), "{stdout}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["arms"].as_array().unwrap().len(), 12, "6 arms x (pp32, tg8)");
    assert_eq!(report["order"].as_array().unwrap().len(), 12);
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap().lines().count(), 12, "every trial written as it ended");
    for metric in ["pp32", "tg8"] {
        for name in ["default", "pinned", "batch", "membind", "interleave"] {
            let a = arm(&report, name, metric);
            assert_eq!(a["valid"], true, "{name}: {}", a["invalid_reason"]);
            assert_eq!(a["samples"].as_array().unwrap().len(), 2, "{name}");
            let (m, ci) = (a["median"].as_f64().unwrap(), &a["ci95"]);
            assert!(m > 0.0 && ci[0].as_f64().unwrap() <= m && m <= ci[1].as_f64().unwrap(), "{a}");
            let state = a["observed"]["sched_ext_before"]["state"].as_str().unwrap();
            assert_eq!(state, if has_sched_ext() { "disabled" } else { "unsupported" }, "{a}");
            if name != "default" {
                assert!(a["ratio_vs_baseline"].as_f64().unwrap() > 0.0 && a["ratio_ci95"].is_array(), "{a}");
                assert!((0.0..=1.0).contains(&a["p_value"].as_f64().unwrap()), "{a}");
            }
        }
        let obs = |name: &str, key: &str| arm(&report, name, metric)["observed"][key].clone();
        assert_eq!(arm(&report, "default", metric)["ratio_vs_baseline"], 1.0);
        // strict: llama.cpp pinned its compute threads one CPU each, within 0-1.
        let pinned = obs("pinned", "cpus_allowed");
        assert!(
            strs(&pinned).iter().all(|c| ["0", "1", "0-1"].contains(c)) && strs(&pinned).contains(&"0"),
            "{pinned}"
        );
        assert_eq!(strs(&obs("batch", "policy")), ["SCHED_BATCH"]);
        assert_eq!(strs(&obs("default", "policy")), ["SCHED_OTHER"]);
        assert_eq!(strs(&obs("membind", "mem_policy")), ["bind:0"]);
        assert_eq!(strs(&obs("interleave", "mem_policy")), ["interleave:0"]);
        assert!(obs("membind", "pages_per_node")["0"].as_u64().unwrap() > 10_000, "the weights, read without mmap");
        let lavd = arm(&report, "lavd", metric);
        assert_eq!(lavd["valid"], false);
        let why = lavd["invalid_reason"].as_str().unwrap();
        assert!(why.contains("\"scx_lavd\" not found in PATH"), "{why}");
        assert_eq!(why.contains("lacks sched_ext"), !has_sched_ext(), "{why}");
        assert!(lavd["samples"].as_array().unwrap().is_empty() && lavd["median"].is_null());
    }
    // The memory-policy arms' trials loaded the model without mmap; the others did not need to.
    let trial = report["trials"].as_array().unwrap().iter().find(|t| t["arm"] == "membind").unwrap();
    assert_eq!(trial["observed"][0]["memory"]["model_file_pages"], 0);
    assert_eq!(report["provenance"]["settings"]["rounds"], 2);
    assert!(report["provenance"]["system"]["topology"]["cpus"].is_array());
}

struct FakeScx {
    dir: tempfile::TempDir,
}

impl FakeScx {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (f, v) in [("state", "disabled"), ("enable_seq", "0"), ("switch_all", "1"), ("kmsg", "")] {
            std::fs::write(dir.path().join(f), format!("{v}\n")).unwrap();
        }
        FakeScx { dir }
    }
    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }
    fn arm(&self, name: &str, mode: &str, delay: &str) -> String {
        let root = self.dir.path().display();
        let kmsg = self.path("kmsg");
        format!("{name}:scheduler={FAKE} {root} {mode} {delay} {} {name},detach_timeout=2", kmsg.display())
    }
    fn args(&self) -> [String; 4] {
        [
            "--scx-sysfs".into(),
            self.dir.path().display().to_string(),
            "--kernel-log".into(),
            self.path("kmsg").display().to_string(),
        ]
    }
    fn read(&self, f: &str) -> String {
        std::fs::read_to_string(self.path(f)).unwrap_or_default().trim().to_string()
    }
}

fn wait_until(mut f: impl FnMut() -> bool, secs: u64) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

fn gone(pid: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
    stat.map_or(true, |s| s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')))
}

#[test]
fn sched_ext_arms_attach_around_each_trial_and_ejections_invalidate_it() {
    let fake = FakeScx::new();
    let json = fake.path("out.json");
    let out = placement()
        .args(fake.args())
        .args([
            "--arm",
            "default",
            "--arm",
            &fake.arm("steady", "normal", "0"),
            "--arm",
            &fake.arm("stall", "eject-state", "0.3"),
        ])
        .args(["--rounds", "2", "--json", json.to_str().unwrap()])
        .args(["--", "bench", "-m", &model(), "-p", "64", "-n", "16", "-r", "3"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let steady = arm(&report, "steady", "pp64");
    assert_eq!(steady["valid"], true, "{}", steady["invalid_reason"]);
    let before = &steady["observed"]["sched_ext_before"];
    assert_eq!((before["state"].as_str(), before["ops"].as_str()), (Some("enabled"), Some("steady")));
    assert_eq!(steady["observed"]["sched_ext_after"]["enable_seq"], before["enable_seq"]);
    let stall = arm(&report, "stall", "pp64");
    assert_eq!(stall["valid"], false);
    let why = stall["invalid_reason"].as_str().unwrap();
    assert!(why.contains("ejected: state is \"disabled\""), "{why}");
    assert!(why.contains("kernel: sched_ext: BPF scheduler \"stall\" disabled (runnable task stall)"), "{why}");
    assert!(why.contains("(2/2 trials)"), "{why}");
    assert_eq!(arm(&report, "default", "pp64")["valid"], true, "disabled throughout between the attaches");
    // Each of the four scheduler trials attached once (enable_seq 1..4) and detached.
    let trials = report["trials"].as_array().unwrap();
    for t in trials.iter().filter(|t| t["arm"] != "default") {
        assert_eq!(t["detach"]["state"], "disabled", "{t}");
    }
    assert_eq!(fake.read("enable_seq"), "4");
    assert_eq!(fake.read("state"), "disabled");
}

/// Starts a long comparison with a fake scheduler arm and waits until it is attached.
fn attached_run(fake: &FakeScx) -> (Child, String) {
    let child = placement()
        .args(fake.args())
        .args(["--arm", &fake.arm("only", "normal", "0"), "--rounds", "1"])
        .args(["--", "bench", "-m", &model(), "-p", "256", "-n", "0", "-r", "200"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(|| fake.read("state") == "enabled", 20), "never attached");
    let pid = fake.read("pid");
    // Into the workload.
    std::thread::sleep(Duration::from_millis(1500));
    (child, pid)
}

#[test]
fn a_harness_killed_mid_trial_leaves_nothing_attached() {
    let fake = FakeScx::new();
    let (mut child, scheduler) = attached_run(&fake);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(wait_until(|| gone(&scheduler), 5), "the scheduler outlived its harness");
    assert!(wait_until(|| fake.read("state") == "disabled", 5), "state {}", fake.read("state"));
    assert!(!Path::new(&fake.path("root/ops")).exists());
}

#[test]
fn ctrl_c_detaches_the_scheduler_before_the_harness_ends() {
    let fake = FakeScx::new();
    let (mut child, scheduler) = attached_run(&fake);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert!(stderr.contains("detaching sched_ext scheduler"), "{stderr}");
    use std::os::unix::process::ExitStatusExt;
    assert!(status.signal() == Some(libc::SIGINT) || status.code() == Some(130), "{status:?}");
    // Detached by the harness itself, in order: state is disabled by the time it exits.
    assert_eq!(fake.read("state"), "disabled");
    assert!(wait_until(|| gone(&scheduler), 2));
}

#[test]
fn perplexity_and_inprocess_replay_workloads_are_placed_too() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("text.txt");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    std::fs::write(&text, readme.repeat(2)).unwrap();
    let json = dir.path().join("ppl.json");
    let out = placement()
        .args(["--arm", "default", "--arm", "bound:policy=batch,mem=bind:0", "--rounds", "1"])
        .args(["--json", json.to_str().unwrap(), "--", "perplexity", "-m", &model(), "-f", text.to_str().unwrap()])
        .args(["-c", "128", "--chunks", "2", "-t", "2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let bound = arm(&report, "bound", "perplexity");
    assert_eq!(bound["valid"], true, "{}", bound["invalid_reason"]);
    assert_eq!(strs(&bound["observed"]["policy"]), ["SCHED_BATCH"]);
    assert_eq!(strs(&bound["observed"]["mem_policy"]), ["bind:0"]);
    assert!(bound["median"].as_f64().unwrap() > 0.0);

    let json = dir.path().join("replay.json");
    let out = placement()
        .args(["--arm", "default", "--arm", "niced:cpus=0-1,nice=5", "--rounds", "1", "--json", json.to_str().unwrap()])
        .args(["--", "replay", "--target", "inproc", "-m", &model(), "--dataset", "synthetic", "--num-prompts", "4"])
        .args(["--synthetic-input", "32", "--synthetic-output", "8"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for metric in ["output tok/s", "req/s"] {
        let niced = arm(&report, "niced", metric);
        assert_eq!(niced["valid"], true, "{}", niced["invalid_reason"]);
        assert_eq!(niced["observed"]["nice"], serde_json::json!([5]), "{niced}");
        assert_eq!(strs(&niced["observed"]["cpus_allowed"]), ["0-1"]);
    }
    // A replay against a server the harness did not start places nothing: refused with the reason.
    let out = placement()
        .args([
            "--arm",
            "default",
            "--",
            "replay",
            "--target",
            "http",
            "--base-url",
            "http://127.0.0.1:9",
            "-m",
            &model(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("a server the harness did not start places nothing"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_server_the_harness_starts_is_the_process_placed() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("served.json");
    let server = format!(
        "{} -m '{}' -c 2048 -np 2 -t 2 --host 127.0.0.1 --port {{port}}",
        benchkit_suite::llama_server().display(),
        model()
    );
    let out = placement()
        .args(["--arm", "default", "--arm", "pinned:cpus=0,policy=batch", "--arm", "membind:mem=bind:0,nice=3"])
        .args(["--rounds", "1", "--json", json.to_str().unwrap(), "--server", &server])
        .args(["--", "replay", "-m", &model(), "--endpoint", "completions", "--dataset", "synthetic"])
        .args(["--num-prompts", "4", "--synthetic-input", "32", "--synthetic-output", "8", "--max-concurrency", "2"])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("| output tok/s |"), "{stdout}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for metric in ["output tok/s", "req/s"] {
        for name in ["default", "pinned", "membind"] {
            let a = arm(&report, name, metric);
            assert_eq!(a["valid"], true, "{name}: {}", a["invalid_reason"]);
            assert!(a["median"].as_f64().unwrap() > 0.0, "{a}");
        }
    }
    let obs = |name: &str, key: &str| arm(&report, name, "req/s")["observed"][key].clone();
    assert_eq!(strs(&obs("pinned", "cpus_allowed")), ["0"]);
    assert_eq!(strs(&obs("pinned", "policy")), ["SCHED_BATCH"]);
    assert_eq!(strs(&obs("membind", "mem_policy")), ["bind:0"]);
    assert_eq!(obs("membind", "nice"), serde_json::json!([3]));
    // --no-mmap was appended for the memory policy: the weights are anonymous memory on node 0.
    assert!(obs("membind", "pages_per_node")["0"].as_u64().unwrap() > 10_000);
    let trials = report["trials"].as_array().unwrap();
    for t in trials {
        // Observed twice: after its first request, and at the end of the replay.
        assert_eq!(t["observed"].as_array().unwrap().len(), 2, "{t}");
        // The server's own threads were seen: llama-server's HTTP threads besides its main one.
        assert!(t["observed"][0]["threads"].as_array().unwrap().len() > 2, "{t}");
    }
    let membind = trials.iter().find(|t| t["arm"] == "membind").unwrap();
    assert_eq!(membind["observed"][1]["memory"]["model_file_pages"], 0);
    assert_eq!(report["provenance"]["settings"]["isolation"], "server");
    assert!(report["provenance"]["settings"]["workload"]["served"]["server"]["command"].is_array());
    // Every server was stopped: the processes observed are gone.
    for t in trials {
        let pid = t["observed"][0]["pid"].as_u64().unwrap();
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "server {pid} left running");
    }
}

#[test]
fn a_server_that_fails_to_start_or_to_get_ready_invalidates_its_trials() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("failed.json");
    // No model is loaded: the trials end before the replay starts.
    let out = placement()
        .args(["--arm", "default", "--rounds", "1", "--json", json.to_str().unwrap()])
        .args(["--server", "sh -c 'echo cannot bind {port} >&2; exit 3'"])
        .args(["--", "replay", "-m", "/nonexistent.gguf"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let why = arm(&report, "default", "output tok/s")["invalid_reason"].as_str().unwrap().to_string();
    assert!(why.contains("exited (status 3) before it was ready; its last line: cannot bind "), "{why}");

    let out = placement()
        .args(["--arm", "default", "--rounds", "1", "--json", json.to_str().unwrap()])
        .args(["--server", "sleep 30", "--server-ready-timeout", "0.5"])
        .args(["--", "replay", "-m", "/nonexistent.gguf"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let why = arm(&report, "default", "output tok/s")["invalid_reason"].as_str().unwrap().to_string();
    assert!(why.contains("did not answer 200 on /health within 0.5 s; stopped"), "{why}");
}
