"""``Store``: the results store that ``--store`` writes and ``benchkit compare``, ``import`` and
``export`` read, for notebooks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence, Union

from benchkit._native import Store as _NativeStore
from benchkit._results import Comparison, ImportReport, RecordsResult, RunsResult

PathLike = Union[str, "os.PathLike[str]"]


def _spec(spec: PathLike) -> str:
    # A postgres:// URL stays as given; a path may be a PathLike.
    return spec if isinstance(spec, str) else str(Path(spec))


def _value(v: Any) -> str:
    """A condition's value as the store spells it: a list or tuple is alternatives (``a|b``),
    a bool ``1`` or ``0``."""
    if isinstance(v, (list, tuple, set, frozenset)):
        return "|".join(_value(x) for x in v)
    if isinstance(v, bool):
        return str(int(v))
    return str(v)


def _filters(filter: str | None, eq: dict[str, Any]) -> list[str]:
    """``filter`` and each ``key=value`` of ``eq`` (None left out), all of which must hold."""
    out = [filter] if filter else []
    return out + [f"{k}={_value(v)}" for k, v in eq.items() if v is not None]


class Store:
    """The results store: a SQLite file or a ``postgres://`` URL, as ``--store`` names it.

    ``Store(path)`` opens it for writing, creating (or upgrading) it, as ``benchkit import``
    and every ``--store`` run do; ``read_only=True`` opens an existing store without writing
    to it (``StoreError`` when there is none), as ``benchkit compare`` and ``export`` do.

    Filters are the commands' ``--filter``: ``key=value[,key=value...]``, ``a|b`` for
    alternatives, ``key!=value`` to exclude, a commit matched by prefix. Keys: ``commit``,
    ``build``, ``machine``, ``source``, ``label``, ``run``, ``model``, ``test``, ``status``,
    ``kind`` and any parameter (``n_threads``...). Keyword arguments add ``key=value``
    conditions: ``store.records(source="llama-bench", n_threads=[1, 2], cpu_strict=False)``
    (a list is alternatives, a bool ``1``/``0``). A malformed filter raises ``ParamError``.
    """

    def __init__(self, spec: PathLike, *, read_only: bool = False) -> None:
        self._native = _NativeStore(_spec(spec), read_only)

    @property
    def name(self) -> str:
        """The path, or the URL without its password."""
        return self._native.name

    def __repr__(self) -> str:
        return f"benchkit.Store({self.name!r})"

    def runs(self, filter: str | None = None, **eq: Any) -> RunsResult:
        """The runs matching the filter's run-level keys, oldest first."""
        return RunsResult._from_json(self._native.runs(_filters(filter, eq)))

    def records(self, filter: str | None = None, **eq: Any) -> RecordsResult:
        """The records matching the filter, in run then record order; ``.to_pandas()`` gives one
        row per record, ``.samples_to_pandas()`` one per raw sample."""
        return RecordsResult._from_json(self._native.entries(_filters(filter, eq)))

    def compare(
        self,
        baseline: str,
        candidate: str,
        *,
        by: str = "commit",
        filter: str | Sequence[str] | None = None,
        metrics: str | Sequence[str] | None = None,
        threshold: float = 0.02,
        alpha: float = 0.05,
        seed: int | None = None,
    ) -> Comparison:
        """``benchkit compare -b baseline -c candidate``: each side a filter
        (``"n_threads=1"``) or a bare value of the ``by`` key (a commit by default). Records
        join on every other key; repeated runs pool their samples. Each row gets the ratio of
        means, its bootstrap 95% CI, the Mann-Whitney p and a verdict: a change when the CI
        excludes 1, p <= ``alpha`` and the change is at least ``threshold``. ``filter``
        restricts both sides; ``metrics`` (``"ts"``, ``"ttft"``...) the metrics compared.

        Raises ``StoreError`` when a side selects no measured record (``kind`` ``Empty``,
        ``side``) or nothing joins (``NoJoin``), ``ParamError`` for a malformed selection,
        threshold or alpha."""
        argv = ["-b", baseline, "-c", candidate, "--by", by]
        argv += ["--threshold", repr(float(threshold)), "--alpha", repr(float(alpha))]
        if seed is not None:
            argv += ["--seed", str(seed)]
        for f in [filter] if isinstance(filter, str) else list(filter or []):
            argv += ["--filter", f]
        for m in [metrics] if isinstance(metrics, str) else list(metrics or []):
            argv += ["--metric", m]
        return Comparison._from_json(self._native.compare(argv))

    def import_file(self, path: PathLike, format: str = "auto", label: str | None = None) -> ImportReport:
        """``benchkit import``: llama-bench's json, jsonl, csv or sql output, or vLLM's (or
        benchkit replay's) result JSON, as one run per build and machine it holds, labelled
        ``label`` (default: the file's name). ``format``: ``auto`` (from the extension and
        contents), ``llama-bench-json``, ``llama-bench-jsonl``, ``llama-bench-csv``,
        ``llama-bench-sql``, ``vllm``. A file that does not parse stores nothing and raises
        ``StoreError`` (``path``, ``line``)."""
        runs, records = self._native.import_file(str(Path(path)), format, label)
        return ImportReport(list(runs), records)
