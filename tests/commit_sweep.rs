//! `benchkit commits` over a real llama.cpp history: a local repository of three commits made by
//! scripts/make-llama-commits-repo.sh (the pinned package's tree, the PyPI sdist's tree of the
//! same version with a trivial change, and a commit that does not build). Each commit is built
//! into its own benchkit, measured, stored; the two that build are compared, and the broken one
//! is a stored `build_failed` run while the sweep goes on.
//!
//! The first commit is a full release build of benchkit (ccache makes llama.cpp's share fast
//! when it has seen these sources); the work directory is kept under target/ so a rerun starts
//! from the newest commit's target directory.

use std::path::Path;
use std::process::Command;

use benchkit::store::{Filter, Store};

#[test]
fn a_two_commit_sweep_stores_both_compares_them_and_records_a_broken_build() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("llama.cpp");
    let out = Command::new(root.join("scripts/make-llama-commits-repo.sh")).arg(&repo).output().unwrap();
    assert!(out.status.success(), "make-llama-commits-repo.sh: {}", String::from_utf8_lossy(&out.stderr));
    let shas: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect();
    assert_eq!(shas.len(), 3, "{shas:?}");

    let db = tmp.path().join("results.db");
    let work = root.join("target/commit-sweep-test");
    let model = benchkit_suite::test_model();
    let out = Command::new(env!("CARGO_BIN_EXE_benchkit"))
        .arg("commits")
        .args(["--repo", repo.to_str().unwrap(), "--commits", &format!("{}..{}", shas[0], shas[2])])
        .args(["--store", db.to_str().unwrap(), "--work-dir", work.to_str().unwrap(), "--json"])
        .args(["--fail-on", "none", "--"])
        .args(["bench", "-m", model.to_str().unwrap(), "-p", "32", "-n", "4", "-r", "3", "-t", "2"])
        .env_remove("BENCHKIT_WORKER_EXE")
        .env_remove("BENCHKIT_STORE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "benchkit commits exited {:?}: {stderr}", out.status);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let commits = report["commits"].as_array().unwrap();
    let got: Vec<(&str, &str)> =
        commits.iter().map(|c| (c["sha"].as_str().unwrap(), c["status"].as_str().unwrap())).collect();
    assert_eq!(got, [(&*shas[0], "ok"), (&*shas[1], "ok"), (&*shas[2], "build_failed")], "{stderr}");
    assert_eq!(commits[0]["records"], 2);
    assert_eq!(commits[1]["records"], 2);
    let error = commits[2]["error"].as_str().unwrap();
    assert!(error.contains("this commit does not build"), "the build log's tail: {error}");

    // Consecutive measured commits, compared test by test.
    let cmps = report["comparisons"].as_array().unwrap();
    assert_eq!(cmps.len(), 1, "{report}");
    assert_eq!((cmps[0]["baseline"].as_str(), cmps[0]["candidate"].as_str()), (Some(&*shas[0]), Some(&*shas[1])));
    let rows = cmps[0]["result"]["rows"].as_array().unwrap();
    let tests: Vec<&str> = rows.iter().map(|r| r["test"].as_str().unwrap()).collect();
    assert_eq!(tests, ["pp32", "tg4"]);
    for r in rows {
        assert!(r["ci"].is_array() && r["p"].is_number() && r["verdict"].is_string(), "{r}");
    }

    // The store has all three, each with its own commit.
    let store = Store::open_read_only(db.to_str().unwrap()).unwrap();
    let runs = store.runs(&Filter::all()).unwrap();
    assert_eq!(runs.len(), 3);
    for (run, sha) in runs.iter().zip(&shas) {
        assert!(sha.starts_with(&run.meta.build_commit) && run.meta.build_commit.len() >= 7, "{run:?}");
        assert_eq!(run.meta.provenance["commit_sweep"]["commit"], sha.as_str());
    }
    assert_eq!(runs[2].meta.status, "build_failed");
    assert_eq!(runs[2].n_records, 0);
    // Each measured commit's binary reported its own commit in every record.
    for (run, sha) in runs.iter().zip(&shas).take(2) {
        let e = store.entries(&Filter::parse(&format!("run={}", run.id.0)).unwrap()).unwrap();
        assert_eq!(e.len(), 2);
        let commit = e[0].record.result["build_commit"].as_str().unwrap();
        assert!(sha.starts_with(commit), "{commit} vs {sha}");
    }
    // Worktrees are removed; logs stay.
    for sha in &shas {
        assert!(!work.join(sha).join("src").exists());
        assert!(work.join(sha).join("build.log").is_file());
    }
}
