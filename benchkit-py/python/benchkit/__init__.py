"""benchkit: LLM inference measurement on llama.cpp, for notebooks.

Every call is the library's configuration -> run -> typed result, as the ``benchkit``
command runs it. Long runs release the GIL, report progress to a callback on the calling
thread, and stop cleanly on Ctrl-C: the ``KeyboardInterrupt`` carries the results measured so
far as ``partial``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, Union

from benchkit import synth
from benchkit._native import (
    BenchError,
    BenchkitError,
    ContextError,
    ExperimentError,
    ModelError,
    ParamError,
    PerplexityError,
    PlacementError,
    ReplayError,
    StoreError,
    SynthError,
    WorkerError,
    __version__,
)
from benchkit._native import bench as _bench
from benchkit._native import experiment_report as _experiment_report
from benchkit._native import experiment_run as _experiment_run
from benchkit._native import perplexity as _perplexity
from benchkit._native import placement as _placement
from benchkit._native import replay as _replay
from benchkit._native import replay_merge as _replay_merge
from benchkit._native import replay_sweep as _replay_sweep
from benchkit._results import (
    BenchResult,
    Comparison,
    ImportReport,
    PerplexityResult,
    PlacementResult,
    RecordsResult,
    ReplayResult,
    RunsResult,
    TelemetrySeries,
)
from benchkit._store import Store

__all__ = [
    "BenchError",
    "BenchResult",
    "Comparison",
    "ImportReport",
    "PerplexityResult",
    "PlacementResult",
    "RecordsResult",
    "ReplayResult",
    "RunsResult",
    "BenchkitError",
    "ContextError",
    "ExperimentError",
    "ModelError",
    "ParamError",
    "PerplexityError",
    "PlacementError",
    "ReplayError",
    "Store",
    "StoreError",
    "SynthError",
    "TelemetrySeries",
    "WorkerError",
    "__version__",
    "bench",
    "experiment_report",
    "experiment_run",
    "kl_divergence",
    "perplexity",
    "placement",
    "replay",
    "replay_merge",
    "replay_sweep",
    "synth",
]

PathLike = Union[str, "os.PathLike[str]"]
Progress = Callable[[dict[str, Any]], object]


def _list(v: Any) -> list[Any]:
    if isinstance(v, (str, bytes, os.PathLike)) or not isinstance(v, Iterable):
        return [v]
    return list(v)


def _worker_argv() -> list[str]:
    """The supervised worker: this interpreter running ``benchkit._worker``, unless
    ``BENCHKIT_WORKER_EXE`` names another program."""
    exe = os.environ.get("BENCHKIT_WORKER_EXE")
    return [exe] if exe else [sys.executable, "-m", "benchkit._worker"]


def _interrupted(e: BaseException, wrap: Callable[[Any], Any]) -> BaseException:
    """``e`` with its ``partial`` (the items so far after Ctrl-C; the whole result after a
    ``StoreError``) as the call's result type."""
    partial = getattr(e, "partial", None)
    if isinstance(partial, (list, tuple, str)):
        e.partial = wrap(partial)  # type: ignore[attr-defined]
    return e


def bench(
    model: PathLike | Sequence[PathLike] | None = None,
    n_prompt: int | Sequence[int] = (512,),
    n_gen: int | Sequence[int] = (128,),
    threads: int | Sequence[int] | None = None,
    *,
    repetitions: int = 5,
    no_warmup: bool = False,
    seed: int | None = None,
    isolate: bool = True,
    timeout: float | None = None,
    progress: Progress | None = None,
    no_telemetry: bool = False,
    telemetry_interval: int = 100,
    telemetry_series: PathLike | None = None,
    store: PathLike | None = None,
    label: str | None = None,
    **grid: Any,
) -> BenchResult:
    """pp/tg tests with llama-bench's methodology: every combination of the parameters.

    ``model`` is a GGUF path or a list (default: the embedded synthetic model, no download);
    ``n_prompt``, ``n_gen``, ``threads`` and any other grid parameter of the library
    (``n_batch``, ``n_ubatch``, ``type_k``, ``flash_attn``, ``n_depth``, ``n_pg``... as
    ``benchkit.bench.Grid`` names them) take a value or a list. With ``isolate`` (the default)
    each model's points run in a supervised worker process, so a crash becomes a record with
    status ``crashed``; ``timeout`` (s) bounds each point. ``progress`` is called on this
    thread with each event (``{"event": "start" | "phase" | "repetition" | "worker", ...}``).
    Each record's telemetry (CPU, memory, energy, GPU while its repetitions ran) comes as
    ``telemetry.*`` columns; samples every ``telemetry_interval`` ms, written to
    ``telemetry_series`` when given (read it with ``TelemetrySeries.read``).
    ``store`` (a SQLite path or ``postgres://`` URL; default ``$BENCHKIT_STORE``) also stores
    each record as it is produced, in one run labelled ``label``, as ``benchkit bench --store``
    does (read it with ``Store``); a run stopped by Ctrl-C stays ``interrupted``.

    Raises ``ModelError`` for a missing or corrupt model, ``ParamError`` for a bad parameter,
    ``StoreError`` for a store that cannot be opened (before measuring) or written (after the
    sweep, with the records as ``partial``), and ``KeyboardInterrupt`` with ``partial`` (a
    ``BenchResult``) on Ctrl-C.
    """
    g: dict[str, Any] = {k: _list(v) for k, v in grid.items()}
    if model is not None:
        g["models"] = [str(Path(m)) for m in _list(model)]
    g["n_prompt"] = _list(n_prompt)
    g["n_gen"] = _list(n_gen)
    if threads is not None:
        g["n_threads"] = _list(threads)
    run: dict[str, Any] = {"repetitions": repetitions, "no_warmup": no_warmup}
    if seed is not None:
        run["seed"] = seed
    telemetry: dict[str, Any] = {"enabled": not no_telemetry, "interval": telemetry_interval}
    if telemetry_series is not None:
        telemetry["series"] = str(Path(telemetry_series))
    config = {
        "grid": g,
        "run": run,
        "isolate": isolate,
        "timeout": timeout,
        "worker": _worker_argv(),
        "telemetry": telemetry,
        "store": None if store is None else (store if isinstance(store, str) else str(Path(store))),
        "label": label,
    }
    try:
        items = _bench(json.dumps(config), progress)
    except BaseException as e:
        raise _interrupted(e, BenchResult._from_json) from None
    return BenchResult._from_json(items)


def _flags(options: dict[str, Any]) -> list[str]:
    """``{"n_predict": 4, "multi_turn": True, "x": None}`` -> ``["--n-predict", "4", "--multi-turn"]``:
    the subcommand's long flags, lists comma-joined."""
    out: list[str] = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            out.append(flag)
        elif isinstance(value, (list, tuple)):
            out += [flag, ",".join(str(v) for v in value)]
        else:
            out += [flag, str(value)]
    return out


def _isolation(isolate: bool, timeout: float | None, timeout_flag: str) -> list[str]:
    if not isolate:
        return ["--in-process"]
    return [timeout_flag, str(timeout)] if timeout is not None else []


def perplexity(
    model: PathLike,
    text: str | None = None,
    *,
    file: PathLike | None = None,
    n_ctx: int = 512,
    n_batch: int | None = None,
    chunks: int | None = None,
    threads: int | None = None,
    save_logits: PathLike | None = None,
    isolate: bool = True,
    timeout: float | None = None,
    progress: Progress | None = None,
    **flags: Any,
) -> PerplexityResult:
    """Perplexity with llama-perplexity's method over ``text`` (or the file ``file``):
    ``n_ctx``-token chunks, the second half of each scored. ``save_logits`` writes the base
    file for ``kl_divergence``. Other flags by ``benchkit perplexity``'s long names
    (``n_gpu_layers=99``, ``flash_attn="on"``; ``store=`` and ``label=`` store the result as
    ``--store`` does). ``progress`` sees each scored chunk."""
    if (text is None) == (file is None):
        raise ParamError("give text= or file=, not both or neither")
    with _text_file(text, file) as path:
        argv = ["-m", str(model), "-f", path, "-c", str(n_ctx)]
        argv += _optional({"-b": n_batch, "--chunks": chunks, "-t": threads, "--kl-divergence-base": save_logits})
        argv += _isolation(isolate, timeout, "--timeout") + _flags(flags)
        return _perplexity_result(argv, progress)


def _perplexity_result(argv: list[str], progress: Progress | None) -> PerplexityResult:
    try:
        out = _perplexity(argv, _worker_argv(), progress)
    except BaseException as e:
        raise _interrupted(e, lambda partial: PerplexityResult(json.loads(partial))) from None
    return PerplexityResult(json.loads(out))


def kl_divergence(
    model: PathLike,
    base: PathLike,
    *,
    threads: int | None = None,
    isolate: bool = True,
    timeout: float | None = None,
    progress: Progress | None = None,
    **flags: Any,
) -> PerplexityResult:
    """KL-divergence of ``model`` against the logits in ``base`` (written by
    ``perplexity(..., save_logits=base)`` on the reference model), over the same tokens."""
    argv = ["-m", str(model), "--kl-divergence-base", str(base), "--kl-divergence"]
    argv += _optional({"-t": threads}) + _isolation(isolate, timeout, "--timeout") + _flags(flags)
    return _perplexity_result(argv, progress)


def replay(
    target: str = "inproc",
    model: PathLike | None = None,
    *,
    dataset: str = "sharegpt",
    num_prompts: int | None = None,
    isolate: bool = True,
    timeout: float | None = None,
    progress: Progress | None = None,
    **flags: Any,
) -> ReplayResult:
    """A serving replay, as ``benchkit replay`` runs it: ``target`` ``"inproc"`` (llama.cpp
    with continuous batching, the embedded default model without ``model``) or ``"http"``
    (``base_url=``, ``model`` as the tokenizer). Other flags by their long names
    (``request_rate=4``, ``max_concurrency=2``, ``synthetic_input=128``, ``output_len=32``...).
    Every request's record is kept; ``.summary`` has vLLM's field names. ``store=`` and
    ``label=`` store the result (each request's latencies as samples) as ``--store`` does."""
    argv = _replay_argv(target, model, dataset, num_prompts, isolate, timeout, flags)
    try:
        items, summary = _replay(argv, _worker_argv(), progress)
    except BaseException as e:
        raise _interrupted(e, lambda partial: ReplayResult._from_json(*_with_summary(partial))) from None
    return ReplayResult._from_json(items, summary)


def replay_merge(paths: PathLike | Sequence[PathLike]) -> ReplayResult:
    """One result from the shards of a replay, as ``benchkit replay merge`` computes it: each
    of N processes ran ``replay("http", ..., shard="I/N", shard_dir=DIR)`` (``start_at=`` an
    agreed time); ``paths`` are shard directories or ``shard-I-of-N.json`` files. Counts,
    tokens and histograms are merged, so the percentiles are those of one process; ``.records``
    holds every shard's records, times on the shared clock. Raises ``ReplayError`` for missing,
    duplicate, foreign or corrupt shards."""
    items, summary = _replay_merge([os.fspath(p) for p in _list(paths)])
    return ReplayResult._from_json(items, summary)


def replay_sweep(
    target: str = "inproc",
    model: PathLike | None = None,
    *,
    dataset: str = "sharegpt",
    num_prompts: int | None = None,
    isolate: bool = True,
    timeout: float | None = None,
    progress: Progress | None = None,
    **flags: Any,
) -> dict[str, Any]:
    """A rate sweep, as ``benchkit replay`` runs one: ``request_rate=[1, 2, 4]`` runs each rate
    in turn; ``sweep="saturation"`` raises the rate until the achieved throughput stops
    growing; ``slo="ttft:p99:500ms,tpot:p99:50ms", search="max-rate"`` finds the largest rate
    meeting the objectives by bisection (``search_min=``, ``search_max=``,
    ``search_tolerance=``). Other arguments as :func:`replay`. Returns the sweep as a dict:
    ``points`` (offered and achieved rates, latency p50/p99, ``meets_slo``, the full
    ``result``), ``conclusion`` (``max_rate``, ``failing_rate``, ``tolerance``... for a search)
    and ``provenance``. ``store=`` stores every run in one store run."""
    argv = _replay_argv(target, model, dataset, num_prompts, isolate, timeout, flags)
    _items, summary = _replay_sweep(argv, _worker_argv(), progress)
    result: dict[str, Any] = json.loads(summary)
    return result


def _replay_argv(
    target: str,
    model: PathLike | None,
    dataset: str,
    num_prompts: int | None,
    isolate: bool,
    timeout: float | None,
    flags: dict[str, Any],
) -> list[str]:
    """``benchkit replay``'s flags for :func:`replay` and :func:`replay_sweep`."""
    argv = ["--target", target, "--dataset", dataset]
    argv += _optional({"-m": model, "--num-prompts": num_prompts})
    if target == "inproc":
        argv += _isolation(isolate, timeout, "--trial-timeout")
    return argv + _flags(flags)


def _with_summary(partial: list[str] | tuple[list[str], str]) -> tuple[list[str], str]:
    """The items so far (Ctrl-C) with no summary, or (items, summary) (a ``StoreError``)."""
    return partial if isinstance(partial, tuple) else (partial, "")


def _optional(options: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for flag, value in options.items():
        if value is not None:
            out += [flag, str(value)]
    return out


class _text_file:
    """The text as a file (a temporary one for ``text``), removed afterwards."""

    def __init__(self, text: str | None, file: PathLike | None) -> None:
        self.text, self.file = text, file
        self.tmp: str | None = None

    def __enter__(self) -> str:
        if self.file is not None:
            return str(self.file)
        import tempfile

        fd, tmp = tempfile.mkstemp(suffix=".txt", prefix="benchkit-")
        self.tmp = tmp
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(self.text or "")
        return tmp

    def __exit__(self, *exc: object) -> None:
        if self.tmp is not None:
            os.unlink(self.tmp)


def placement(
    workload: str | Sequence[str],
    arms: Sequence[str] = ("default",),
    *,
    rounds: int = 5,
    seed: int = 1,
    baseline: str | None = None,
    arms_file: PathLike | None = None,
    server: str | None = None,
    store: PathLike | None = None,
    label: str | None = None,
    progress: Progress | None = None,
) -> PlacementResult:
    """Compares placements of ``workload`` (``benchkit placement``'s, after its ``--``:
    ``"bench -m MODEL -p 512 -n 128 -t 2"``, ``perplexity ...``, ``replay ...``), each arm
    (``"pinned:cpus=0-1,strict=1"``, ``"batch:policy=batch"``, ``"membind:mem=bind:0"``...)
    verified on every trial, over ``rounds`` interleaved rounds. With ``server``, the replay
    goes to that server, started placed for each trial. ``store`` and ``label`` store each
    arm's records as ``--store`` does. ``progress`` is unused: trials arrive in the result (and
    in ``partial`` after Ctrl-C)."""
    import shlex

    argv: list[str] = []
    for arm in arms:
        argv += ["--arm", arm]
    argv += ["--rounds", str(rounds), "--seed", str(seed)]
    argv += _optional({"--baseline": baseline, "--arms": arms_file, "--server": server})
    argv += _optional({"--store": store, "--label": label})
    argv += ["--"] + (shlex.split(workload) if isinstance(workload, str) else list(workload))
    try:
        items, report = _placement(argv, _worker_argv(), progress)
    except BaseException as e:
        raise _interrupted(e, lambda partial: PlacementResult._from_json(*_with_summary(partial))) from None
    return PlacementResult._from_json(items, report)


def _benchkit_exe(exe: PathLike | None) -> str:
    """The ``benchkit`` executable an experiment's treatments run: ``exe``, else
    ``$BENCHKIT_EXE``, else ``benchkit`` on ``PATH``."""
    if exe is not None:
        return str(exe)
    import shutil

    found = os.environ.get("BENCHKIT_EXE") or shutil.which("benchkit")
    if not found:
        raise ExperimentError(
            "no benchkit executable: pass exe=, set BENCHKIT_EXE or put benchkit on PATH "
            "(each treatment runs `benchkit <command> ...`)"
        )
    return found


def experiment_run(
    file: PathLike,
    *,
    store: PathLike,
    exe: PathLike | None = None,
    log_dir: PathLike | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Runs the experiment ``file`` (docs/experiments.md) as ``benchkit experiment run FILE
    --store STORE`` does: each treatment not yet completed in ``store`` is set up, measured by
    ``benchkit <command>`` (``exe``) and torn down. ``progress`` gets ``{"event": "starting",
    "plan": ...}`` and ``{"event": "done", "outcome": ...}`` per treatment. Returns the summary
    (``name``, ``hash``, ``treatments``: each one's ``status``, ``run_id``, ``error``;
    ``interrupted``). Ctrl-C tears the treatment in progress down, then raises
    ``KeyboardInterrupt`` with the outcomes so far as ``partial``."""
    try:
        _, summary = _experiment_run(
            str(file), str(store), _benchkit_exe(exe), None if log_dir is None else str(log_dir), progress
        )
    except BaseException as e:
        raise _interrupted(e, lambda partial: [json.loads(p) for p in partial]) from None
    out: dict[str, Any] = json.loads(summary)
    return out


def experiment_report(
    name: str,
    *,
    store: PathLike,
    baseline: str | None = None,
    metrics: Sequence[str] = (),
    threshold: float = 0.02,
    alpha: float = 0.05,
    seed: int = 0x5EED,
) -> dict[str, Any]:
    """The report of experiment ``name`` in ``store``, as ``benchkit experiment report``
    prints it: ``report`` (each treatment's levels, status and metrics; each other completed
    treatment compared with ``baseline``, default the first, with ``compare``'s ratio, CI, p
    and verdict), ``markdown`` and ``csv``."""
    out: dict[str, Any] = json.loads(
        _experiment_report(name, str(store), baseline, list(metrics), threshold, alpha, seed)
    )
    return out
