#!/usr/bin/env python3
"""benchkit vs llama.cpp's llama-bench, side by side on the same machine.

Builds llama-bench from the same llama.cpp version with the same CMake flags as llama-sys
(scripts/build-reference-tools.sh), builds benchkit's llama_bench example, then runs the two
alternately (A B A B ...) on the same model, threads and test sizes, and prints each tool's
pp/tg t/s and the ratio benchkit / llama-bench. Target: within +-2%.

    scripts/fidelity_llama_bench.py                       # real test model, -p 512 -n 128 -t 2
    scripts/fidelity_llama_bench.py -m model.gguf --rounds 5 -t 2
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, stdout=subprocess.PIPE, **kw).stdout


def run_json(cmd):
    out = sh(cmd, stderr=subprocess.DEVNULL)
    return {f"{'pp' if r['n_gen'] == 0 else 'tg'}{r['n_prompt'] or r['n_gen']}": r["avg_ts"] for r in json.loads(out)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", default=os.path.join(ROOT, "models", "gemma-3-270m-q4_k_m.gguf"))
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("-r", type=int, default=5, help="repetitions inside each run")
    ap.add_argument("--rounds", type=int, default=3, help="A B alternations")
    args = ap.parse_args()

    if not os.path.exists(args.model):
        sh([os.path.join(ROOT, "scripts", "fetch-test-model.sh")])
    bindir = sh([os.path.join(ROOT, "scripts", "build-reference-tools.sh")]).strip().splitlines()[-1]
    sh(["cargo", "build", "--release", "--example", "llama_bench"], cwd=ROOT)
    ours = os.path.join(ROOT, "target", "release", "examples", "llama_bench")
    common = ["-m", args.model, "-p", str(args.p), "-n", str(args.n), "-t", str(args.t), "-r", str(args.r), "-o", "json"]
    tools = {"llama-bench": [os.path.join(bindir, "llama-bench")] + common, "benchkit": [ours] + common}

    results = {name: {} for name in tools}
    for rnd in range(args.rounds):
        for name, cmd in tools.items():  # A B A B ...
            for test, ts in run_json(cmd).items():
                results[name].setdefault(test, []).append(ts)
            print(f"round {rnd + 1}/{args.rounds} {name}: done", file=sys.stderr)

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"machine: {cpu}, {os.cpu_count()} CPUs; model {os.path.basename(args.model)}; -t {args.t} -r {args.r}; {args.rounds} rounds A/B")
    print()
    # Each round pairs an A run with the B run right after it; the median of the per-round
    # ratios is robust to drift and to a noisy neighbour during one round.
    print("| test | llama-bench t/s (median) | benchkit t/s (median) | ratio per round | median ratio |")
    print("| --- | ---: | ---: | --- | ---: |")
    worst = 0.0
    for test in results["llama-bench"]:
        a, b = results["llama-bench"][test], results["benchkit"][test]
        ratios = [y / x for x, y in zip(a, b)]
        ratio = statistics.median(ratios)
        worst = max(worst, abs(ratio - 1))
        per_round = " ".join(f"{r:.3f}" for r in ratios)
        print(f"| {test} | {statistics.median(a):.2f} | {statistics.median(b):.2f} | {per_round} | {ratio:.4f} |")
    print()
    print(f"largest deviation of the median ratio: {worst * 100:.2f}% (target: within 2%)")


if __name__ == "__main__":
    main()
