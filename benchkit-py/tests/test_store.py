from pathlib import Path

import pytest

import benchkit
from benchkit._results import RUN_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "benchkit" / "tests" / "fixtures" / "store"
TEXT = (ROOT / "README.md").read_text() * 2


@pytest.fixture(scope="module")
def two_runs(test_model, tmp_path_factory):
    """A store with two real sweeps of the test model: 1 thread (label t1), then 2 (t2)."""
    db = tmp_path_factory.mktemp("store") / "results.db"
    for threads in (1, 2):
        r = benchkit.bench(test_model, n_prompt=[16], n_gen=[4], threads=[threads], repetitions=5, store=db, label=f"t{threads}")
        assert [x["status"] for x in r] == ["ok", "ok"]
    return db


def test_bench_runs_are_stored_one_run_each(two_runs):
    store = benchkit.Store(two_runs)
    assert store.name == str(two_runs)
    runs = store.runs()
    assert len(runs) == 2
    df = runs.to_pandas()
    assert list(df.columns) == list(RUN_COLUMNS)
    assert list(df["label"]) == ["t1", "t2"]
    assert list(df["n_records"]) == [2, 2]
    assert set(df["status"]) == {"ok"} and set(df["source"]) == {"benchkit"} and set(df["kind"]) == {"bench"}
    build = runs.runs[0]["provenance"]["build"]
    assert (df["build_commit"].iloc[0], df["build_number"].iloc[0]) == (build["build_commit"], build["build_number"])
    assert runs.runs[0]["provenance"]["model"]["path"].endswith("gemma-3-270m-q4_k_m.gguf")
    assert [r["label"] for r in store.runs(label="t2")] == ["t2"]
    assert len(store.runs("label=t1|t2")) == 2
    empty = store.runs(source="llama-bench").to_pandas()
    assert len(empty) == 0 and list(empty.columns) == list(RUN_COLUMNS)


def test_records_have_params_metrics_and_raw_samples(two_runs):
    store = benchkit.Store(two_runs, read_only=True)
    df = store.records().to_pandas()
    assert list(df["test"]) == ["pp16", "tg4", "pp16", "tg4"]
    assert list(df["n_threads"]) == ["1", "1", "2", "2"]
    assert list(df["label"]) == ["t1", "t1", "t2", "t2"]
    assert (df["ts"] > 0).all() and (df["ts_n"] == 5).all() and (df["ts_stddev"] >= 0).all()
    assert set(df["ts_unit"]) == {"t/s"}
    assert df["model"].iloc[0].startswith("gemma3")
    assert df["record"].is_unique and list(df["run"]) == [1, 1, 2, 2]
    two = store.records(n_threads=2, test="tg4")
    assert [(e["record"]["name"], e["record"]["params"]["n_threads"]) for e in two] == [("tg4", "2")]
    assert len(store.records("test=pp16", n_threads=[1, 2])) == 2
    assert len(store.records("n_threads!=1")) == 2
    assert len(store.records(cpu_strict=False, repack=True)) == 4 and len(store.records(cpu_strict=True)) == 0
    samples = store.records(test="pp16").samples_to_pandas()
    ts = samples[samples["metric"] == "ts"]
    assert len(ts) == 10 and sorted(set(ts["idx"])) == [0, 1, 2, 3, 4]
    assert (ts["value"] > 0).all()
    # Each record's mean is its samples' mean.
    for (rec, mean) in zip(df[df["test"] == "pp16"]["record"], df[df["test"] == "pp16"]["ts"]):
        assert ts[ts["record"] == rec]["value"].mean() == pytest.approx(mean)


def test_two_thread_counts_compare_with_ci_p_and_verdict(two_runs):
    store = benchkit.Store(two_runs)
    c = store.compare("n_threads=1", "n_threads=2")
    assert [(r["test"], r["metric"]) for r in c.rows if r["metric"] == "ts"] == [("pp16", "ts"), ("tg4", "ts")]
    df = c.to_pandas()
    ts = df[df["metric"] == "ts"]
    assert (ts["baseline_n"] == 5).all() and (ts["candidate_n"] == 5).all()
    assert (ts["ratio"] == ts["candidate_mean"] / ts["baseline_mean"]).all()
    assert (ts["ci_low"] <= ts["ci_high"]).all() and (ts["ci_low"] > 0).all()
    assert ((ts["p"] > 0) & (ts["p"] <= 1)).all()
    assert set(df["verdict"]) <= {"improvement", "regression", "no_change", "inconclusive"}
    assert c.has_regression == (df["verdict"] == "regression").any()
    assert c.has_change == df["verdict"].isin(["improvement", "regression"]).any()
    assert "pp16" in c.to_markdown() and "tg4" in c.to_markdown()
    csv = c.to_csv().splitlines()
    assert csv[0].split(",")[-4:] == ["ratio", "ci_low", "ci_high", "p", "verdict"][-4:] and len(csv) == 1 + len(df)
    assert c.data["baseline_runs"] == [1] and c.data["candidate_runs"] == [2]
    assert c.data["common"]["n_batch"] == "2048" and "n_threads" not in c.data["common"]
    # Restricted to one test and metric, the same row.
    one = store.compare("1", "2", by="n_threads", filter="test=tg4", metrics="ts")
    assert [(r["test"], r["metric"]) for r in one.rows] == [("tg4", "ts")]
    assert one.rows[0]["ratio"] == pytest.approx(ts[ts["test"] == "tg4"].iloc[0]["ratio"])
    # By label, the runs still differ in n_threads: nothing joins.
    with pytest.raises(benchkit.StoreError) as e:
        store.compare("t1", "t2", by="label")
    assert e.value.kind == "NoJoin" and "n_threads" in str(e.value)
    # A wider threshold makes no change of a small one; alpha is passed through.
    loose = store.compare("n_threads=1", "n_threads=2", threshold=0.99, alpha=0.5, metrics=["ts"])
    assert loose.data["threshold"] == 0.99 and loose.data["alpha"] == 0.5
    assert all(r["verdict"] in ("no_change", "improvement") for r in loose.rows)


def test_every_fixture_format_imports(tmp_path):
    store = benchkit.Store(tmp_path / "sub" / "imports.db")
    for name in ("llama-bench.json", "llama-bench.jsonl", "llama-bench.csv", "llama-bench.sql"):
        report = store.import_file(FIXTURES / name)
        assert len(report.runs) == 1 and report.records == 2, name
    report = store.import_file(FIXTURES / "vllm.json", format="vllm", label="vllm-run")
    assert report.records == 1
    runs = store.runs(source="llama-bench").to_pandas()
    assert list(runs["label"]) == ["llama-bench.json", "llama-bench.jsonl", "llama-bench.csv", "llama-bench.sql"]
    assert set(runs["build_commit"]) == {"3f4fc97f"} and set(runs["build_number"]) == {6123}
    df = store.records(label="llama-bench.csv").to_pandas()
    assert list(df["test"]) == ["pp64", "tg16"]
    assert list(df["ts"]) == [128.136752, 20.002084]
    assert len(store.records(label="llama-bench.csv").samples_to_pandas()) == 0
    assert list(store.records(label="llama-bench.json").samples_to_pandas()["value"][:3]) == [128.0, 123.077, 133.333]
    vllm = store.records(source="vllm").to_pandas()
    assert (vllm["kind"].iloc[0], vllm["ttft"].iloc[0], vllm["ttft_unit"].iloc[0]) == ("replay", 200.0, "ms")
    assert vllm["request_rate"].iloc[0] == "inf"
    # Samples against a mean alone: a ratio, no test.
    c = store.compare("llama-bench.json", "llama-bench.csv", by="label")
    assert [r["verdict"] for r in c.rows] == ["inconclusive", "inconclusive"]
    assert all(r["ci"] is None and r["p"] is None for r in c.rows)
    assert c.rows[0]["ratio"] == pytest.approx(128.136752 / ((128 + 123.077 + 133.333) / 3))


def test_perplexity_and_replay_store_their_results_too(test_model, tmp_path):
    db = tmp_path / "more.db"
    p = benchkit.perplexity(test_model, TEXT, n_ctx=128, chunks=2, store=db, label="ppl")
    r = benchkit.replay("inproc", test_model, dataset="synthetic", num_prompts=3, synthetic_input=16, synthetic_output=4, store=str(db))
    store = benchkit.Store(db)
    assert [(x["kind"], x["label"], x["n_records"]) for x in store.runs()] == [("perplexity", "ppl", 1), ("replay", None, 1)]
    df = store.records().to_pandas()
    assert df["ppl"].iloc[0] == pytest.approx(p["ppl"])
    assert df["ttft"].iloc[1] == pytest.approx(r.summary["mean_ttft_ms"])
    ttft = store.records(kind="replay").samples_to_pandas()
    assert len(ttft[ttft["metric"] == "ttft"]) == 3


def test_errors_are_store_and_param_errors(tmp_path, test_model):
    assert issubclass(benchkit.StoreError, benchkit.BenchkitError)
    with pytest.raises(benchkit.StoreError) as e:
        benchkit.Store(tmp_path / "missing.db", read_only=True)
    assert e.value.kind == "NotFound" and e.value.store == str(tmp_path / "missing.db")
    assert e.value.fields == {"store": str(tmp_path / "missing.db"), "path": None, "line": None, "side": None}
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(benchkit.StoreError) as e:
        benchkit.Store("postgres://me:secret@db.example/results")
    assert e.value.kind == "NoPostgres" and "secret" not in str(e.value) and "me:***@" in e.value.store

    store = benchkit.Store(tmp_path / "r.db")
    with pytest.raises(benchkit.ParamError) as e:
        store.runs("novalue")
    assert (e.value.kind, e.value.param, e.value.value) == ("Filter", "filter", "novalue")
    with pytest.raises(benchkit.ParamError):
        store.records(filter="=x")
    store.import_file(FIXTURES / "llama-bench.json")
    with pytest.raises(benchkit.StoreError) as e:
        store.compare("deadbeef", "3f4fc97f")
    assert (e.value.kind, e.value.side) == ("Empty", "baseline")
    with pytest.raises(benchkit.ParamError) as e:
        store.compare("3f4fc97f", "3f4fc97f", threshold=1.5)
    assert e.value.param == "--threshold"
    with pytest.raises(benchkit.ParamError) as e:
        store.compare("3f4fc97f", "3f4fc97f", filter="novalue")
    assert e.value.param == "--filter"

    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    with pytest.raises(benchkit.StoreError) as e:
        store.import_file(bad, format="llama-bench-json")
    assert e.value.kind == "Parse" and e.value.path == str(bad) and e.value.line == "1"
    odd = tmp_path / "notes.txt"
    odd.write_text("hello")
    with pytest.raises(benchkit.StoreError) as e:
        store.import_file(odd)
    assert e.value.kind == "UnknownFormat" and e.value.path == str(odd)
    with pytest.raises(benchkit.ParamError) as e:
        store.import_file(FIXTURES / "vllm.json", format="yaml")
    assert e.value.param == "format"
    # Nothing of the failed imports was stored.
    assert len(store.runs()) == 1

    # A store that cannot be opened stops a run before it measures.
    with pytest.raises(benchkit.StoreError) as e:
        benchkit.bench(test_model, n_prompt=[16], n_gen=[], repetitions=1, store=tmp_path)
    assert e.value.kind == "Open"
