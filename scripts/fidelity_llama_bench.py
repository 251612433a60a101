#!/usr/bin/env python3
"""benchkit vs llama.cpp's llama-bench, side by side on the same machine.

Builds llama-bench from the same llama.cpp version with the same CMake flags as llama-sys
(scripts/build-reference-tools.sh), builds benchkit's llama_bench example, then runs the two
alternately (A B, B A, A B, ...) on the same model, threads and test sizes, and prints each
tool's pp/tg t/s and the ratio benchkit / llama-bench. Target: within +-2%.

The fidelity figure is the ratio of the fastest repetitions: on a shared machine (a VM with
neighbours) repetitions vary by 10-20% in phases of seconds, and that noise only ever slows a
repetition down. The pooled-median and per-round ratios are printed next to it, with each
tool's repetition-to-repetition variation, so the noise is visible.

    scripts/fidelity_llama_bench.py                       # real test model, -p 512 -n 128 -t 2
    scripts/fidelity_llama_bench.py -m model.gguf --rounds 20 -r 3 -t 2
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
    """test name -> (avg_ts, samples_ts) of one run."""
    out = sh(cmd, stderr=subprocess.DEVNULL)
    return {
        f"{'pp' if r['n_gen'] == 0 else 'tg'}{r['n_prompt'] or r['n_gen']}": (r["avg_ts"], r["samples_ts"])
        for r in json.loads(out)
    }


def cv(xs):
    return statistics.stdev(xs) / statistics.mean(xs) if len(xs) > 1 else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", default=os.path.join(ROOT, "models", "gemma-3-270m-q4_k_m.gguf"))
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("-r", type=int, default=3, help="repetitions inside each run")
    ap.add_argument("--rounds", type=int, default=10, help="alternations (A B, then B A, ...)")
    args = ap.parse_args()

    if not os.path.exists(args.model):
        sh([os.path.join(ROOT, "scripts", "fetch-test-model.sh")])
    bindir = sh([os.path.join(ROOT, "scripts", "build-reference-tools.sh")]).strip().splitlines()[-1]
    sh(["cargo", "build", "--release", "--example", "llama_bench"], cwd=ROOT)
    ours = os.path.join(ROOT, "target", "release", "examples", "llama_bench")
    common = ["-m", args.model, "-p", str(args.p), "-n", str(args.n), "-t", str(args.t), "-r", str(args.r), "-o", "json"]
    tools = {"llama-bench": [os.path.join(bindir, "llama-bench")] + common, "benchkit": [ours] + common}

    runs = {name: {} for name in tools}  # name -> test -> [avg_ts per round]
    samples = {name: {} for name in tools}  # name -> test -> every repetition's t/s
    for rnd in range(args.rounds):
        order = list(tools.items())
        if rnd % 2:
            order.reverse()  # A B, B A, A B, ...: neither tool always runs first
        for name, cmd in order:
            for test, (avg, ts) in run_json(cmd).items():
                runs[name].setdefault(test, []).append(avg)
                samples[name].setdefault(test, []).extend(ts)
            print(f"round {rnd + 1}/{args.rounds} {name}: done", file=sys.stderr)

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"machine: {cpu}, {os.cpu_count()} CPUs; model {os.path.basename(args.model)}; -t {args.t} -r {args.r}; "
          f"{args.rounds} rounds, alternating A B / B A")
    print()
    # Three estimators of benchkit / llama-bench:
    # - best: the fastest repetition of each tool. On a shared machine other tenants only ever
    #   slow a repetition down, so the fastest one is the closest to the undisturbed speed
    #   (the reason Python's timeit reports the minimum); this is the fidelity figure.
    # - pooled median: median t/s over every repetition of each tool.
    # - per-round median: each round pairs a run of A with the run of B next to it.
    print("| test | llama-bench best t/s | benchkit best t/s | best ratio | pooled median ratio "
          "| per-round ratio (median) | repetition CV llama-bench / benchkit |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    worst = 0.0
    for test in runs["llama-bench"]:
        a_s, b_s = samples["llama-bench"][test], samples["benchkit"][test]
        best = max(b_s) / max(a_s)
        pooled = statistics.median(b_s) / statistics.median(a_s)
        per_round = statistics.median(y / x for x, y in zip(runs["llama-bench"][test], runs["benchkit"][test]))
        worst = max(worst, abs(best - 1))
        print(f"| {test} | {max(a_s):.2f} | {max(b_s):.2f} | {best:.4f} | {pooled:.4f} | {per_round:.4f} "
              f"| {cv(a_s) * 100:.1f}% / {cv(b_s) * 100:.1f}% |")
    print()
    print(f"largest deviation of the best-repetition ratio: {worst * 100:.2f}% (target: within 2%)")


if __name__ == "__main__":
    main()
