#!/usr/bin/env python3
"""benchkit vs llama.cpp's llama-bench, side by side on the same machine.

Builds llama-bench from the same llama.cpp version with the same CMake flags as llama-sys
(scripts/build-reference-tools.sh), builds the benchkit binary, then runs the two
alternately (A B, B A, A B, ...) on the same model, threads and test sizes, and prints each
tool's pp/tg t/s and the ratio benchkit / llama-bench. Target: within +-2%.

On a shared machine (a VM with neighbours) repetitions vary by 5-20% in phases lasting seconds,
so single runs prove nothing. Each run here measures one test with a few repetitions; runs of
the two tools alternate (A B, B A, ...) so the two runs of a pair see the same phase; the
fidelity figure is the median of the paired ratios benchkit / llama-bench with a bootstrap 95%
confidence interval, and the target is met when that interval lies inside [0.98, 1.02].

    scripts/fidelity_llama_bench.py                       # real test model, -p 512 -n 128 -t 2
    scripts/fidelity_llama_bench.py -m model.gguf --rounds 40 -r 2 -t 2
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys

from benchlib import ROOT, cpu_name, sh


def run_json(cmd):
    """test name -> (avg_ts, samples_ts) of one run."""
    out = sh(cmd, stderr=subprocess.DEVNULL)
    return {
        f"{'pp' if r['n_gen'] == 0 else 'tg'}{r['n_prompt'] or r['n_gen']}": (r["avg_ts"], r["samples_ts"])
        for r in json.loads(out)
    }


def cv(xs):
    return statistics.stdev(xs) / statistics.mean(xs) if len(xs) > 1 else 0.0


def median_ci(xs, level=0.95, resamples=4000, seed=1):
    """Percentile-bootstrap confidence interval of the median (seeded: reproducible)."""
    rng = random.Random(seed)
    meds = sorted(statistics.median(rng.choices(xs, k=len(xs))) for _ in range(resamples))
    lo = meds[int((1 - level) / 2 * resamples)]
    hi = meds[min(resamples - 1, int((1 + level) / 2 * resamples))]
    return lo, hi


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", default=os.path.join(ROOT, "models", "gemma-3-270m-q4_k_m.gguf"))
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("-r", type=int, default=2, help="repetitions inside each run")
    ap.add_argument("--rounds", type=int, default=30, help="pairs of runs per test (A B, then B A, ...)")
    args = ap.parse_args()

    if not os.path.exists(args.model):
        sh([os.path.join(ROOT, "scripts", "fetch-test-model.sh")])
    bindir = sh([os.path.join(ROOT, "scripts", "build-reference-tools.sh")]).strip().splitlines()[-1]
    sh(["cargo", "build", "--release", "--bin", "benchkit"], cwd=ROOT)
    ours = [os.path.join(ROOT, "target", "release", "benchkit"), "bench"]
    tools = {"llama-bench": [os.path.join(bindir, "llama-bench")], "benchkit": ours}
    # One test per run, so the two runs of a pair are seconds apart and see the same phase of
    # the machine's noise.
    tests = {f"pp{args.p}": ["-p", str(args.p), "-n", "0"], f"tg{args.n}": ["-p", "0", "-n", str(args.n)]}
    common = ["-m", args.model, "-t", str(args.t), "-r", str(args.r), "-o", "json"]

    runs = {name: {t: [] for t in tests} for name in tools}  # avg t/s of each run
    samples = {name: {t: [] for t in tests} for name in tools}  # every repetition's t/s
    for rnd in range(args.rounds):
        for test, flags in tests.items():
            order = list(tools.items())
            if rnd % 2:
                order.reverse()  # A B, B A, A B, ...: neither tool always runs first
            for name, exe in order:
                (avg, ts), = run_json(exe + common + flags).values()
                runs[name][test].append(avg)
                samples[name][test].extend(ts)
        print(f"round {rnd + 1}/{args.rounds} done", file=sys.stderr)

    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs; model {os.path.basename(args.model)}; -t {args.t} -r {args.r}; "
          f"{args.rounds} pairs of runs per test, alternating A B / B A")
    print()
    # The fidelity figure: the median of the paired ratios (each run of one tool against the
    # run of the other right next to it) with a bootstrap 95% confidence interval. Also shown:
    # each tool's median and fastest repetition, and how much repetitions vary on this machine.
    print("| test | llama-bench t/s (median) | benchkit t/s (median) | paired ratio (median) | 95% CI "
          "| best-repetition ratio | repetition CV llama-bench / benchkit |")
    print("| --- | ---: | ---: | ---: | --- | ---: | ---: |")
    ok = True
    for test in tests:
        a, b = runs["llama-bench"][test], runs["benchkit"][test]
        ratios = [y / x for x, y in zip(a, b)]
        med = statistics.median(ratios)
        lo, hi = median_ci(ratios)
        ok &= 0.98 <= lo and hi <= 1.02
        a_s, b_s = samples["llama-bench"][test], samples["benchkit"][test]
        print(f"| {test} | {statistics.median(a):.2f} | {statistics.median(b):.2f} | {med:.4f} | [{lo:.4f}, {hi:.4f}] "
              f"| {max(b_s) / max(a_s):.4f} | {cv(a_s) * 100:.1f}% / {cv(b_s) * 100:.1f}% |")
    print()
    print(f"within +-2% (95% CI of every paired-ratio median inside [0.98, 1.02]): {'yes' if ok else 'no'}")


if __name__ == "__main__":
    main()
