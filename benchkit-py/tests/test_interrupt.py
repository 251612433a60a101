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
