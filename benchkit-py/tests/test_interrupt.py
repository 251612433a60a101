import json
import os
import signal
import subprocess
import sys
import time

CHILD = r"""
import json, sys, benchkit
worker = []
def progress(e):
    if e["event"] == "worker":
        worker.append(e["pid"])
    if e["event"] == "phase" and e["index"] == 1 and e["phase"] == "warmup":
        print("running", flush=True)
try:
    benchkit.bench(n_prompt=[16], n_gen=[4096], repetitions=3, progress=progress)
    print(json.dumps({"finished": True}))
except KeyboardInterrupt as e:
    print(json.dumps({"statuses": [r["status"] for r in e.partial], "errors": [r.get("error") for r in e.partial],
                      "workers": worker}))
# The interpreter survives and benchkit still works.
print(json.dumps({"after": [r["status"] for r in benchkit.bench(n_prompt=[8], n_gen=[], repetitions=1)]}))
"""


def test_sigint_stops_the_run_keeps_the_partial_results_and_the_interpreter():
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "running"
    started = time.monotonic()
    os.kill(child.pid, signal.SIGINT)
    out, _ = child.communicate(timeout=120)
    stopped = time.monotonic() - started
    lines = [json.loads(line) for line in out.splitlines()]
    assert "finished" not in lines[0], "the run was not interrupted"
    assert lines[0]["statuses"] == ["ok", "cancelled"]
    assert "cancelled" in lines[0]["errors"][1]
    # The worker measuring tg4096 was killed, not left running.
    for pid in lines[0]["workers"]:
        assert not os.path.exists(f"/proc/{pid}"), f"worker {pid} left running"
    assert lines[1] == {"after": ["ok"]}
    assert child.returncode == 0
    assert stopped < 60, f"the interrupt took {stopped:.1f} s"


HTTP_CHILD = r"""
import json, sys, time, benchkit
started = time.monotonic()
try:
    benchkit.replay("http", sys.argv[1], base_url=sys.argv[2], endpoint="completions", dataset="synthetic",
                    num_prompts=4, synthetic_input=16, synthetic_output=200, max_concurrency=1)
    print(json.dumps({"finished": True}))
except KeyboardInterrupt as e:
    print(json.dumps({"records": len(e.partial.records), "elapsed": time.monotonic() - started}))
"""


def test_sigint_stops_an_http_replay_without_waiting_for_it(test_model):
    import http.server
    import threading

    got_request = threading.Event()

    class Slow(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            got_request.set()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for _ in range(200):  # one token every 0.25 s: 50 s a request
                    data = b'data: {"choices":[{"index":0,"text":"x"}]}\n\n'
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
                    time.sleep(0.25)
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        child = subprocess.Popen([sys.executable, "-c", HTTP_CHILD, test_model, url], stdout=subprocess.PIPE, text=True)
        assert got_request.wait(60), "the replay never reached the server"
        time.sleep(0.5)
        os.kill(child.pid, signal.SIGINT)
        out, _ = child.communicate(timeout=60)
    finally:
        server.shutdown()
    result = json.loads(out.splitlines()[-1])
    assert "finished" not in result
    assert result["records"] == 0  # nothing had completed; the request in flight was dropped
    assert result["elapsed"] < 30, result
    assert child.returncode == 0
