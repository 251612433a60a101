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
    ModelError,
    ParamError,
    PerplexityError,
    PlacementError,
    ReplayError,
    SynthError,
    WorkerError,
    __version__,
)
from benchkit._native import bench as _bench
from benchkit._results import BenchResult

__all__ = [
    "BenchError",
    "BenchResult",
    "BenchkitError",
    "ContextError",
    "ModelError",
    "ParamError",
    "PerplexityError",
    "PlacementError",
    "ReplayError",
    "SynthError",
    "WorkerError",
    "__version__",
    "bench",
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


def _interrupted(e: BaseException, wrap: Callable[[list[str]], Any]) -> BaseException:
    partial = getattr(e, "partial", None)
    if isinstance(partial, list):
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

    Raises ``ModelError`` for a missing or corrupt model, ``ParamError`` for a bad parameter,
    and ``KeyboardInterrupt`` with ``partial`` (a ``BenchResult``) on Ctrl-C.
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
    config = {"grid": g, "run": run, "isolate": isolate, "timeout": timeout, "worker": _worker_argv()}
    try:
        items = _bench(json.dumps(config), progress)
    except BaseException as e:
        raise _interrupted(e, BenchResult._from_json) from None
    return BenchResult._from_json(items)
