import threading

import benchkit


def test_the_default_model_gives_one_row_per_test_with_ts():
    df = benchkit.bench(n_prompt=[64], n_gen=[16], repetitions=2).to_pandas()
    assert list(df["test"]) == ["pp64", "tg16"]
    assert (df["avg_ts"] > 0).all()
    assert list(df["status"]) == ["ok", "ok"]
    assert all(len(s) == 2 for s in df["samples_ts"])
    assert "provenance" not in df.columns


def test_records_carry_the_provenance_and_llama_bench_fields(test_model):
    r = benchkit.bench(test_model, n_prompt=[32], n_gen=[8], threads=[1, 2], repetitions=2)
    assert [(x["test"], x["n_threads"]) for x in r] == [("pp32", 1), ("tg8", 1), ("pp32", 2), ("tg8", 2)]
    assert r.provenance is not None
    assert r.provenance["model"]["path"].endswith("gemma-3-270m-q4_k_m.gguf")
    assert r.provenance["started_at"].endswith("Z")
    rows = r.to_dicts()
    assert rows[0]["model_type"].startswith("gemma3")
    assert rows[0]["n_prompt"] == 32 and rows[1]["n_gen"] == 8


def test_progress_arrives_on_the_calling_thread_in_order():
    events = []
    benchkit.bench(n_prompt=[16], n_gen=[4], repetitions=2, progress=lambda e: events.append((threading.get_ident(), e)))
    assert {t for t, _ in events} == {threading.get_ident()}
    kinds = [e["event"] for _, e in events]
    assert kinds[0] == "worker" and kinds[1] == "start"
    reps = [e for _, e in events if e["event"] == "repetition"]
    assert [(e["index"], e["rep"], e["of"]) for e in reps][-1] == (1, 2, 2)
    assert any(e["event"] == "phase" and e["phase"] == "warmup" for _, e in events)


def test_in_process_runs_too():
    r = benchkit.bench(n_prompt=[16], n_gen=[], repetitions=1, isolate=False)
    assert [x["status"] for x in r] == ["ok"]


def test_a_failing_callback_stops_the_run_and_keeps_what_was_measured():
    def progress(e):
        if e["event"] == "start" and e["index"] == 1:
            raise RuntimeError("stop here")

    try:
        benchkit.bench(n_prompt=[16], n_gen=[256], repetitions=2, progress=progress)
    except RuntimeError as e:
        assert str(e) == "stop here"
        assert [x["status"] for x in e.partial] == ["ok", "cancelled"]
    else:
        raise AssertionError("the callback's exception was not raised")
