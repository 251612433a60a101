import benchkit


def test_bench_rows_carry_telemetry_columns_and_the_series_reads_as_a_frame(test_model, tmp_path):
    series = tmp_path / "series.jsonl"
    r = benchkit.bench(test_model, n_prompt=[32], n_gen=[8], threads=2, repetitions=2, telemetry_interval=20, telemetry_series=series)
    df = r.to_pandas()
    assert "telemetry" not in df.columns
    assert (df["telemetry.cpu.user_s"] + df["telemetry.cpu.system_s"] > 0).all()
    assert (df["telemetry.memory.peak_rss_bytes"] > 100 << 20).all()
    assert (df["telemetry.cpu.voluntary_ctxt_switches"] + df["telemetry.cpu.nonvoluntary_ctxt_switches"] > 0).all()
    assert list(df["telemetry.window.from"]) == ["repetition", "repetition"]
    for part in ("energy", "gpu"):
        measured = [c for c in df.columns if c.startswith(f"telemetry.{part}.") and c != f"telemetry.{part}.unavailable"]
        assert measured or df[f"telemetry.{part}.unavailable"].str.len().gt(0).all(), part
    s = benchkit.TelemetrySeries.read(series)
    frame = s.to_pandas()
    assert len(frame) > 10
    assert frame["process.user_s"].is_monotonic_increasing or frame["pid"].nunique() > 1
    marks = s.marks_to_pandas()
    assert (marks["phase"] == "repetition").sum() == 4
    assert set(marks["index"]) == {0, 1}


def test_telemetry_can_be_turned_off():
    r = benchkit.bench(n_prompt=[16], n_gen=[], repetitions=1, no_telemetry=True)
    assert r.to_dicts()[0]["telemetry.cpu.unavailable"] == "telemetry off"


def test_perplexity_and_replay_results_carry_telemetry(test_model):
    text = "The quick brown fox jumps over the lazy dog. " * 200
    p = benchkit.perplexity(test_model, text, n_ctx=128, chunks=2, threads=2, telemetry_interval=20)
    assert p.telemetry["telemetry.cpu.user_s"] > 0
    r = benchkit.replay("inproc", test_model, dataset="synthetic", num_prompts=3, synthetic_input=16, synthetic_output=4)
    assert r.telemetry["telemetry.cpu.user_s"] > 0
    assert r.summary["telemetry"]["window"]["from"] == "warmup"
    assert r.server_metrics is None
