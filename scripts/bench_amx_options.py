#!/usr/bin/env python3
"""Which way around GCC 12's AMX miscompile is right: pp speed of each against `--repack 0`.

On a CPU with AMX, ggml's AMX kernels (built by GGML_NATIVE) crash when GCC 12 compiles them
(llama-sys/build/amx.rs says why). The ways around it, each built as llama.cpp's own llama-bench
from the reference source (scripts/fetch-reference-source.sh) so only the compile differs:

  patched  GCC, llama-sys/build/amx/tileconfig-fix.h force-included (what llama-sys does)
  no-amx   GCC, -mno-amx-tile -mno-amx-int8 -mno-amx-bf16 (AMX kernels left out)
  clang    Debian's clang, no patch (its intrinsic is right)
  repack0  the patched build run with --repack 0: no extra buffer types, the issue's baseline

Runs are interleaved (one repetition block of each variant per round, order rotated each round)
so that the shared VM's slow phases hit every variant alike; the figure is the median over
rounds of each variant's pp t/s divided by repack0's in the same round.

    scripts/bench_amx_options.py                 # real test model, pp512, -t 2, 6 rounds
    scripts/bench_amx_options.py -m model.gguf --rounds 10
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

from benchlib import ROOT, cpu_name, sh

REF = os.path.join(ROOT, "target", "reference")
FIX = os.path.join(ROOT, "llama-sys", "build", "amx", "tileconfig-fix.h")


def build(name, cc, cxx, flags):
    """llama-bench of the reference source, compiled with `cc`/`cxx` and extra `flags`."""
    src = sh([os.path.join(ROOT, "scripts", "fetch-reference-source.sh"), REF]).strip()
    out = os.path.join(REF, f"amx-{name}")
    exe = os.path.join(out, "bin", "llama-bench")
    if not os.path.exists(exe):
        sh(["cmake", "-S", src, "-B", out, "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_C_COMPILER={cc}",
            f"-DCMAKE_CXX_COMPILER={cxx}", f"-DCMAKE_C_FLAGS={flags}", f"-DCMAKE_CXX_FLAGS={flags}",
            "-DGGML_NATIVE=ON", "-DGGML_OPENMP=OFF", "-DGGML_BLAS=OFF", "-DGGML_CCACHE=ON",
            "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_OPENSSL=OFF",
            "-DBUILD_SHARED_LIBS=OFF"], stderr=subprocess.DEVNULL)
        sh(["cmake", "--build", out, "-j", str(os.cpu_count() or 2), "--target", "llama-bench"],
           stderr=subprocess.DEVNULL)
    return exe


def pp_ts(exe, model, args, extra):
    cmd = [exe, "-m", model, "-p", str(args.p), "-n", "0", "-t", str(args.t), "-r", str(args.r), "-o", "json"] + extra
    return json.loads(sh(cmd, stderr=subprocess.DEVNULL))[0]["avg_ts"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", default=os.path.join(ROOT, "models", "gemma-3-270m-q4_k_m.gguf"))
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--build-only", action="store_true", help="build the variants and stop")
    args = ap.parse_args()

    patched = build("patched", "gcc", "g++", f"-include {FIX}")
    variants = [
        ("patched", patched, []),
        ("no-amx", build("no-amx", "gcc", "g++", "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"), []),
        ("clang", build("clang", "clang", "clang++", ""), []),
        ("repack0", patched, ["--repack", "0"]),
    ]
    if args.build_only:
        return
    ratios = {name: [] for name, _, _ in variants}
    ts = {name: [] for name, _, _ in variants}
    for rnd in range(args.rounds):
        order = variants[rnd % len(variants):] + variants[:rnd % len(variants)]
        got = {name: pp_ts(exe, args.m, args, extra) for name, exe, extra in order}
        for name in got:
            ts[name].append(got[name])
            ratios[name].append(got[name] / got["repack0"])
        print(f"round {rnd + 1}: " + "  ".join(f"{n} {got[n]:.1f}" for n, _, _ in variants), file=sys.stderr)

    print(f"CPU: {cpu_name()}; model {os.path.basename(args.m)}; pp{args.p}, -t {args.t}, -r {args.r}, {args.rounds} rounds")
    print(f"| variant | pp{args.p} t/s (median) | / repack0 (median of paired ratios) | min..max ratio |")
    print("|---|---:|---:|---|")
    for name, _, _ in variants:
        r = ratios[name]
        print(f"| {name} | {statistics.median(ts[name]):.1f} | {statistics.median(r):.3f} | {min(r):.3f}..{max(r):.3f} |")


if __name__ == "__main__":
    main()
