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


def test_shards_of_one_schedule_merge_into_one_result(test_model, tmp_path):
    import http.server
    import json
    import threading

    import pytest

    class Sse(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
            if not self.path.endswith("/completions"):
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            n = int(body.get("max_tokens", 4))
            events = [json.dumps({"choices": [{"index": 0, "text": "x", "finish_reason": None}]})] * n
            events.append(json.dumps({"choices": [], "usage": {"prompt_tokens": 16, "completion_tokens": n}}))
            data = ("".join(f"data: {e}\n\n" for e in events) + "data: [DONE]\n\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        common = dict(base_url=f"http://127.0.0.1:{server.server_port}", endpoint="completions", num_prompts=6,
                      synthetic_input=16, synthetic_output=3, request_rate=50, seed=3, no_server_metrics=True)
        for i in range(2):
            part = benchkit.replay("http", test_model, dataset="synthetic", shard=f"{i}/2", shard_dir=tmp_path, **common)
            assert part.summary["completed"] == 3
        merged = benchkit.replay_merge(tmp_path)
        s = merged.summary
        assert (s["completed"], s["failed"], s["total_output_tokens"]) == (6, 0, 18)
        assert s["num_prompts"] == 6 and s["count_e2el"] == 6
        assert sorted(r["id"] for r in merged.records) == list(range(6))
        assert [x["index"] for x in merged.provenance["settings"]["shards"]] == [0, 1]
        (tmp_path / "shard-1-of-2.json").unlink()
        with pytest.raises(benchkit.ReplayError, match=r"shards \[1\] of 2 are missing"):
            benchkit.replay_merge([tmp_path])
    finally:
        server.shutdown()


def test_a_rate_sweep_gives_a_point_per_rate_and_an_slo_verdict_for_each():
    s = benchkit.replay_sweep(
        "inproc", dataset="synthetic", num_prompts=3, synthetic_input=16, synthetic_output=4,
        request_rate=[50, 100], slo="e2el:p99:60s", isolate=False,
    )
    assert [p["offered"] for p in s["points"]] == [50.0, 100.0]
    assert s["conclusion"] == {"kind": "rates"}
    for p in s["points"]:
        assert p["completed"] == 3 and p["meets_slo"] is True
        assert p["objectives"][0]["metric"] == "e2el" and p["objectives"][0]["met"]
        assert p["result"]["request_rate"] == p["offered"]
    assert "sweep" in s["provenance"]["settings"]


def test_a_trace_replays_at_its_own_times_and_a_shared_prefix_in_groups(test_model, tmp_path):
    import json

    lines = [
        {"timestamp": 100 + 20 * i, "input_length": 24, "output_length": 3, "hash_ids": [0, i % 2]}
        for i in range(4)
    ]
    trace = tmp_path / "trace.jsonl"
    trace.write_text("".join(json.dumps(line) + "\n" for line in lines))
    r = benchkit.replay("inproc", test_model, dataset=f"trace:{trace}", trace_block_size=8, trace_time_scale=0.5)
    s = r.summary
    assert s["completed"] == 4 and s["num_prompts"] == 4 and s["total_output_tokens"] == 12
    assert s["request_rate"] == 100.0  # 3 gaps of 10 ms
    assert s["provenance"]["dataset"]["kind"] == "trace"
    df = r.to_pandas().sort_values("id")
    assert list(df["scheduled_ns"]) == [0, 10_000_000, 20_000_000, 30_000_000]

    r = benchkit.replay(
        "inproc", test_model, dataset="shared-prefix", shared_prefix_groups=2, shared_prefix_prompts_per_group=2,
        shared_prefix_system_len=32, shared_prefix_question_len=8, output_len=2,
    )
    assert r.summary["completed"] == 4 and r.summary["total_input_tokens"] == 4 * 40
    assert r.summary["provenance"]["dataset"]["kind"] == "shared_prefix"
