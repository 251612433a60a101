import benchkit


def test_an_in_process_replay_gives_vllm_fields_per_request_rows_and_token_timings(test_model):
    r = benchkit.replay("inproc", test_model, dataset="synthetic", num_prompts=4, synthetic_input=32, synthetic_output=8, warmup=1)
    s = r.summary
    assert s["completed"] == 4 and s["failed"] == 0
    assert s["total_output_tokens"] == 32
    for key in ("request_throughput", "output_throughput", "mean_ttft_ms", "p99_itl_ms", "provenance"):
        assert key in s
    df = r.to_pandas()
    assert len(df) == 5 and df["warmup"].sum() == 1
    assert (df[~df["warmup"]]["output_tokens"] == 8).all()
    tokens = r.tokens_to_pandas()
    assert len(tokens) == 5 * 8
    first = tokens[tokens["token"] == 0]["ns"]
    assert (first > 0).all()
    assert tokens.groupby("id")["ns"].apply(lambda ns: ns.is_monotonic_increasing).all()


def test_the_default_model_needs_no_file():
    r = benchkit.replay("inproc", dataset="synthetic", num_prompts=2, synthetic_input=16, synthetic_output=4)
    assert r.summary["completed"] == 2


def test_bad_flags_and_targets_raise_param_error():
    import pytest

    with pytest.raises(benchkit.ParamError) as e:
        benchkit.replay("mars")
    assert e.value.param == "--target"
    with pytest.raises(benchkit.ParamError):
        benchkit.replay("http", "/tmp/t.gguf")  # no --base-url
