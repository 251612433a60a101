"""Experiment files from Python: run (and resume) a 2-treatment bench experiment, report it,
and a bad file's typed error."""

import os
from pathlib import Path

import pytest

import benchkit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def benchkit_exe() -> str:
    """The benchkit command each treatment runs (scripts/test.sh builds it)."""
    exe = Path(os.environ.get("BENCHKIT_EXE", ROOT / "target" / "release" / "benchkit"))
    assert exe.is_file(), f"no benchkit executable at {exe}: cargo build --release --bin benchkit"
    return str(exe)


def write(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "exp.toml"
    f.write_text(text)
    return f


def test_run_resume_and_report(tmp_path, test_model, benchkit_exe):
    f = write(
        tmp_path,
        f"""
name = "threads"
command = "bench"
args = ["-m", "{test_model}", "-p", "8", "-n", "0", "-r", "2"]
[[factors]]
name = "threads"
levels = [1, 2]
flag = "-t"
[teardown]
run = [["sh", "-c", "echo {{treatment}} >> {tmp_path}/teardown.txt"]]
""",
    )
    db = tmp_path / "r.db"
    events = []
    summary = benchkit.experiment_run(f, store=db, exe=benchkit_exe, log_dir=tmp_path / "logs", progress=events.append)
    assert [t["status"] for t in summary["treatments"]] == ["ok", "ok"]
    assert [t["treatment"]["id"] for t in summary["treatments"]] == ["threads=1", "threads=2"]
    assert [e["event"] for e in events] == ["starting", "done", "starting", "done"]
    assert (tmp_path / "teardown.txt").read_text().splitlines() == ["threads=1", "threads=2"]

    again = benchkit.experiment_run(f, store=db, exe=benchkit_exe, log_dir=tmp_path / "logs")
    assert [t["status"] for t in again["treatments"]] == ["skipped", "skipped"]
    assert [t["run_id"] for t in again["treatments"]] == [t["run_id"] for t in summary["treatments"]]

    out = benchkit.experiment_report("threads", store=db)
    report = out["report"]
    assert [t["treatment"] for t in report["treatments"]] == ["threads=1", "threads=2"]
    assert report["baseline"] == "threads=1"
    (c,) = report["comparisons"]
    assert c["candidate"] == "threads=2"
    assert any(r["metric"] == "ts" for r in c["comparison"]["rows"])
    assert "threads=2 vs threads=1 (baseline)" in out["markdown"]
    assert out["csv"].startswith("baseline,candidate,")
    # The levels are parameters of the stored records.
    assert len(benchkit.Store(db).records("exp.threads=2")) == 1


def test_a_bad_file_names_its_key(tmp_path, benchkit_exe):
    f = write(tmp_path, 'name = "x"\ncommand = "bench"\nargs = ["-p", "{nope}"]\n')
    with pytest.raises(benchkit.ExperimentError) as e:
        benchkit.experiment_run(f, store=tmp_path / "r.db", exe=benchkit_exe)
    assert e.value.kind == "Invalid"
    assert e.value.key == "args[1]"
    assert "unknown placeholder {nope}" in str(e.value)
    benchkit.Store(tmp_path / "r.db")  # an empty store
    with pytest.raises(benchkit.ExperimentError) as e:
        benchkit.experiment_report("never-ran", store=tmp_path / "r.db")
    assert e.value.kind == "NoRuns"
