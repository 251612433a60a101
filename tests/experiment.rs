//! Experiment files end to end: docs/examples/parallel-x-rate.toml (llama-server `--parallel`
//! 1 and 2 x replay request rate 1 and 2, the real gemma model) runs 4 treatments with setup
//! and teardown; killed after 2 and restarted, it completes the other 2 and skips the first 2;
//! `experiment report` compares them. A failed setup and a failing command are recorded and the
//! experiment goes on; teardown runs after both, and after SIGTERM.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use benchkit::store::{Filter, Run, Store};

/// The tests here measure: one at a time (cargo runs a file's tests in parallel).
static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn measuring() -> std::sync::MutexGuard<'static, ()> {
    MEASURING.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn experiment(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_benchkit"));
    c.arg("experiment")
        .args(args)
        .env_remove("BENCHKIT_WORKER_EXE")
        .env_remove("BENCHKIT_STORE")
        .env("BENCHKIT_TEST_MODEL", benchkit_suite::test_model())
        .env("BENCHKIT_LLAMA_SERVER", benchkit_suite::llama_server());
    c
}

fn output(mut c: Command) -> Output {
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn runs(db: &Path, name: &str) -> Vec<Run> {
    let Ok(store) = Store::open_read_only(db.to_str().unwrap()) else { return Vec::new() };
    let prefix = format!("exp:{name}/");
    store
        .runs(&Filter::all())
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.meta.label.as_deref().is_some_and(|l| l.starts_with(&prefix)))
        .collect()
}

fn ok_runs(db: &Path, name: &str) -> Vec<Run> {
    runs(db, name).into_iter().filter(|r| r.meta.status == "ok").collect()
}

/// Processes whose command line holds `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else { continue };
        if String::from_utf8_lossy(&cmdline).contains(marker) {
            out.push(pid);
        }
    }
    out
}

/// Waits (up to 15 s: SIGKILL from the death signal, then the reaper) until no process holds
/// `marker`.
fn assert_no_process_with(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !processes_with(marker).is_empty() {
        assert!(Instant::now() < deadline, "orphaned processes with {marker}: {:?}", processes_with(marker));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The example file, each server named by a marker alias, and a teardown that notes each
/// treatment and its port.
fn example_with_teardown(dir: &Path, marker: &str) -> PathBuf {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/parallel-x-rate.toml");
    let text = std::fs::read_to_string(example).unwrap();
    let port = "\"--port\", \"{port}\",";
    assert!(text.contains(port));
    let mut text = text.replace(port, &format!("{port} \"--alias\", \"{marker}\","));
    // The client shares 2 cores with the server (and, here, with builds): its schedule lag is not
    // what this test is about, and a replay flagged `invalid` would not be compared.
    let seed = "\"--seed\", \"1\",";
    assert!(text.contains(seed));
    text = text.replace(seed, &format!("{seed} \"--max-schedule-lag-ms\", \"10000\", \"--max-client-cpu\", \"1\","));
    let notes = dir.join("teardown.txt");
    text.push_str(&format!(
        "\n[teardown]\nrun = [[\"sh\", \"-c\", \"echo {{treatment}} {{port}} >> {}\"]]\n",
        notes.display()
    ));
    let file = dir.join("exp.toml");
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn killed_experiment_resumes_and_reports_its_four_treatments() {
    let _serial = measuring();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results.db");
    let marker = format!("benchkit-exp-test-{}", std::process::id());
    let file = example_with_teardown(dir.path(), &marker);
    let (file_s, db_s, logs) = (file.to_str().unwrap(), db.to_str().unwrap(), dir.path().join("logs"));
    let common = ["--store", db_s, "--log-dir", logs.to_str().unwrap()];

    // First attempt: killed outright once two treatments are stored.
    let mut first = experiment(&[&["run", file_s][..], &common].concat())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(200);
    let done_before = loop {
        let ok = ok_runs(&db, "parallel-x-rate");
        if ok.len() >= 2 {
            break ok;
        }
        assert!(first.try_wait().unwrap().is_none(), "the experiment ended early: {}", tail(&logs));
        assert!(Instant::now() < deadline, "two treatments did not complete in time: {}", tail(&logs));
        std::thread::sleep(Duration::from_millis(100));
    };
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(done_before.len() < 4, "all treatments completed before the kill");
    // The server of the treatment in progress died with the experiment.
    assert_no_process_with(&marker);

    // Restarted: the completed treatments are skipped, the others run.
    let again = output(experiment(&[&["run", file_s][..], &common].concat()));
    let printed = text(&again);
    assert!(again.status.success(), "{printed}");
    assert_eq!(printed.matches("skipped: completed before").count(), done_before.len(), "{printed}");
    assert_no_process_with(&marker);

    let ok = ok_runs(&db, "parallel-x-rate");
    assert_eq!(ok.len(), 4, "{ok:#?}");
    let treatments: BTreeSet<&str> = ok
        .iter()
        .map(|r| r.meta.label.as_deref().unwrap().split_once('/').unwrap().1.split('@').next().unwrap())
        .collect();
    assert_eq!(
        treatments,
        BTreeSet::from(["parallel=1+rate=1", "parallel=1+rate=2", "parallel=2+rate=1", "parallel=2+rate=2"])
    );
    let before: BTreeSet<i64> = done_before.iter().map(|r| r.id.0).collect();
    let after: BTreeSet<i64> = ok.iter().map(|r| r.id.0).collect();
    assert!(before.is_subset(&after), "completed treatments were measured again: {before:?} {after:?}");

    // Each run's records carry the treatment's levels, queryable as parameters.
    let store = Store::open_read_only(db_s).unwrap();
    let tagged =
        store.entries(&Filter::parse("experiment=parallel-x-rate,exp.parallel=2,exp.rate=1").unwrap()).unwrap();
    assert_eq!(tagged.len(), 1);
    assert_eq!(tagged[0].record.params["treatment"], "parallel=2+rate=1");
    assert_eq!(tagged[0].record.kind, "replay");
    assert_eq!(tagged[0].record.metrics["ttft"].samples.len(), 4, "{:?}", tagged[0].record.metrics["ttft"]);

    // Teardown ran for every treatment of the second attempt, and for the first one (done before
    // the second started; the kill may have come between a run's end and its teardown, where
    // only the death signal stops the server). Each server's port is closed.
    let notes = std::fs::read_to_string(dir.path().join("teardown.txt")).unwrap();
    let label_of = |id: i64| ok.iter().find(|r| r.id.0 == id).and_then(|r| r.meta.label.clone()).unwrap();
    let torn_down = treatments
        .iter()
        .filter(|t| **t == "parallel=1+rate=1" || !before.iter().any(|id| label_of(*id).contains(&format!("/{t}@"))));
    for t in torn_down {
        assert!(notes.lines().any(|l| l.starts_with(&format!("{t} "))), "no teardown of {t}: {notes}");
    }
    for port in notes.lines().filter_map(|l| l.split_whitespace().nth(1)?.parse::<u16>().ok()) {
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "port {port} still answers");
    }

    // The report: 4 treatments, 3 compared with the first, with compare's statistics.
    let json = output(experiment(&["report", "--store", db_s, "parallel-x-rate", "-o", "json"]));
    assert!(json.status.success(), "{}", text(&json));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["treatments"].as_array().unwrap().len(), 4);
    assert_eq!(report["baseline"], "parallel=1+rate=1");
    let comparisons = report["comparisons"].as_array().unwrap();
    assert_eq!(comparisons.len(), 3);
    for c in comparisons {
        let rows = c["comparison"]["rows"].as_array().unwrap_or_else(|| panic!("{c}"));
        let ttft = rows.iter().find(|r| r["metric"] == "ttft").unwrap_or_else(|| panic!("{c}"));
        assert!(ttft["p"].is_number() && ttft["ci"].is_array(), "{ttft}");
        assert!(ttft["verdict"].is_string());
    }
    let md = output(experiment(&["report", "--store", db_s, "parallel-x-rate"]));
    let md = String::from_utf8_lossy(&md.stdout);
    for t in &treatments {
        assert!(md.contains(&format!("| {t} |")), "{md}");
    }
    assert_eq!(md.matches("(baseline)").count(), 3, "{md}");
    let csv = output(experiment(&["report", "--store", db_s, "parallel-x-rate", "-o", "csv"]));
    assert!(String::from_utf8_lossy(&csv.stdout).starts_with("baseline,candidate,"));
}

fn tail(logs: &Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(logs).into_iter().flatten().flatten() {
        for f in ["setup.log", "server.log", "run.log"] {
            let t = std::fs::read_to_string(e.path().join(f)).unwrap_or_default();
            let lines: Vec<&str> = t.lines().collect();
            out.push_str(&format!(
                "\n== {}/{f}\n{}",
                e.path().display(),
                lines[lines.len().saturating_sub(15)..].join("\n")
            ));
        }
    }
    out
}

#[test]
fn failed_setup_and_failed_command_are_recorded_and_teardown_always_runs() {
    let _serial = measuring();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results.db");
    let notes = dir.path().join("teardown.txt");
    let model = benchkit_suite::test_model();
    let file = dir.path().join("exp.toml");
    std::fs::write(
        &file,
        format!(
            r#"
name = "failures"
command = "bench"
args = ["-p", "8", "-n", "0", "-r", "1", "-t", "1", "-o", "json"]
treatments = [
  {{ prog = "sleep", model = "{m}" }},
  {{ prog = "benchkit-no-such-program", model = "{m}" }},
  {{ prog = "sleep", model = "/nonexistent/model.gguf" }},
]
[[factors]]
name = "prog"
levels = ["sleep", "benchkit-no-such-program"]
[[factors]]
name = "model"
levels = ["{m}", "/nonexistent/model.gguf"]
flag = "-m"
[setup]
spawn = ["{{prog}}", "30"]
[teardown]
run = [["sh", "-c", "echo {{treatment}} >> {notes}"]]
"#,
            m = model.display(),
            notes = notes.display()
        ),
    )
    .unwrap();
    let out = output(experiment(&["run", file.to_str().unwrap(), "--store", db.to_str().unwrap()]));
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(1), "{printed}");
    assert!(printed.contains("2 of 3 treatment(s) did not complete"), "{printed}");

    let runs = runs(&db, "failures");
    let statuses: Vec<&str> = runs.iter().map(|r| r.meta.status.as_str()).collect();
    assert_eq!(statuses, ["ok", "setup_failed", "failed"], "{runs:#?}");
    assert!(runs[0].n_records > 0);
    let setup_error = runs[1].meta.error.as_deref().unwrap();
    assert!(setup_error.contains("cannot start benchkit-no-such-program"), "{setup_error}");
    // bench stores a failed record for a model that does not load: the run measured nothing.
    let error = runs[2].meta.error.as_deref().unwrap();
    assert!(error.contains("no record completed: model file not found"), "{error}");
    // Teardown ran after each: success, failed setup, failed command.
    assert_eq!(std::fs::read_to_string(&notes).unwrap().lines().count(), 3);

    // Run again: the completed treatment is skipped, the failed ones are tried again.
    let again = output(experiment(&["run", file.to_str().unwrap(), "--store", db.to_str().unwrap()]));
    assert_eq!(text(&again).matches("skipped: completed before").count(), 1, "{}", text(&again));
    assert_eq!(std::fs::read_to_string(&notes).unwrap().lines().count(), 5);
}

#[test]
fn sigterm_stops_the_experiment_after_teardown() {
    let _serial = measuring();
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("teardown.txt");
    let started = dir.path().join("started");
    let file = dir.path().join("exp.toml");
    std::fs::write(
        &file,
        format!(
            r#"
name = "interrupted"
command = "bench"
[[factors]]
name = "n"
levels = [1, 2]
[setup]
run = [["sh", "-c", "touch {started}; exec sleep 60"]]
[teardown]
run = [["sh", "-c", "echo {{treatment}} >> {notes}"]]
"#,
            started = started.display(),
            notes = notes.display()
        )
        .replace("levels = [1, 2]", "levels = [1, 2]\nflag = \"-t\""),
    )
    .unwrap();
    let mut c = experiment(&["run", file.to_str().unwrap(), "--store", dir.path().join("r.db").to_str().unwrap()]);
    let mut child = c.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !started.exists() {
        assert!(Instant::now() < deadline, "setup did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill only sends a signal to the child started above.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    // The first treatment was torn down; the second never started.
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "n=1\n");
}
