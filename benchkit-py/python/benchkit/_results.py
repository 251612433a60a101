"""Typed results: the library's records, with their provenance, as dicts or DataFrames."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterator


def flatten(d: dict[str, Any], prefix: str) -> dict[str, Any]:
    """``{"cpu": {"user_s": 1.0}}`` -> ``{"<prefix>.cpu.user_s": 1.0}``; a list of objects (GPU
    devices) by position, other lists left out (series belong in their own frame)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key))
        elif isinstance(v, list):
            for i, item in enumerate(v):
                if isinstance(item, dict):
                    out.update(flatten(item, f"{key}.{i}"))
        else:
            out[key] = v
    return out


def telemetry_columns(record: dict[str, Any]) -> dict[str, Any]:
    """A record's telemetry summary as flat ``telemetry.*`` columns: measured figures
    (``telemetry.cpu.user_s``, ``telemetry.energy.j_per_token``...) or, for a part that was not
    measured, its reason (``telemetry.gpu.unavailable``)."""
    t = record.get("telemetry")
    return flatten(t, "telemetry") if isinstance(t, dict) else {}


@dataclass
class TelemetrySeries:
    """A telemetry time series (``telemetry_series=`` / ``--telemetry-series``): every sample
    and phase mark, on one clock (``t_s``, seconds since the recorder started)."""

    lines: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> TelemetrySeries:
        """Reads a series file; a line cut off by a crash is skipped."""
        lines = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    lines.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return cls(lines)

    def samples(self) -> list[dict[str, Any]]:
        """One flat row per sample: ``pid``, ``index`` (the trial), ``t_s``, ``unix_ns``,
        ``process.*`` (cumulative counters), ``machine.busy_pct``, ``machine.cpu<N>`` (busy %),
        ``rapl_j.<domain>`` (J since start), ``gpu<i>.*``."""
        rows = []
        for line in self.lines:
            if line.get("kind") != "sample":
                continue
            row = {k: line.get(k) for k in ("pid", "index", "t_s", "unix_ns")}
            row.update(flatten(line.get("process") or {}, "process"))
            machine = line.get("machine") or {}
            if machine:
                row["machine.busy_pct"] = machine.get("busy_pct")
                for i, pct in enumerate(machine.get("cpu_busy_pct") or []):
                    row[f"machine.cpu{i}"] = pct
                for i, mhz in enumerate(machine.get("freq_mhz") or []):
                    row[f"machine.freq_mhz{i}"] = mhz
            row.update(flatten(line.get("rapl_j") or {}, "rapl_j"))
            for g in line.get("gpu") or []:
                row.update(flatten({k: v for k, v in g.items() if k != "index"}, f"gpu{g.get('index')}"))
            rows.append(row)
        return rows

    def marks(self) -> list[dict[str, Any]]:
        """One row per phase mark: ``pid``, ``index``, ``phase`` (and ``rep``/``of`` or
        ``chunk``/``of``), ``t_s``, ``unix_ns``."""
        return [{k: v for k, v in line.items() if k != "kind"} for line in self.lines if line.get("kind") == "mark"]

    def to_pandas(self) -> Any:
        """``samples()`` as a pandas DataFrame."""
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]

        return pd.DataFrame(self.samples())

    def marks_to_pandas(self) -> Any:
        """``marks()`` as a pandas DataFrame."""
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]

        return pd.DataFrame(self.marks())


@dataclass
class BenchResult:
    """A pp/tg sweep: one record per grid point, in llama-bench's field names and order.

    ``records`` keep everything the library wrote, provenance included; ``provenance`` is the
    first record's (each record's differs only in its point's settings and start time).
    """

    records: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def _from_json(cls, items: list[str]) -> BenchResult:
        return cls([json.loads(i) for i in items])

    @property
    def provenance(self) -> dict[str, Any] | None:
        return self.records[0].get("provenance") if self.records else None

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def to_dicts(self) -> list[dict[str, Any]]:
        """One flat dict per record, without the nested provenance (see ``provenance``), its
        telemetry summary as ``telemetry.*`` columns."""
        skip = {"provenance", "telemetry"}
        return [{**{k: v for k, v in r.items() if k not in skip}, **telemetry_columns(r)} for r in self.records]

    def to_pandas(self) -> Any:
        """The records as a pandas DataFrame (pandas is imported only here)."""
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]

        return pd.DataFrame(self.to_dicts())


@dataclass
class PerplexityResult:
    """A perplexity or KL-divergence run: the library's record (llama-perplexity's figures,
    per-chunk values, timings) with its provenance."""

    data: dict[str, Any]

    @property
    def provenance(self) -> dict[str, Any] | None:
        p = self.data.get("provenance")
        return p if isinstance(p, dict) else None

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    @property
    def telemetry(self) -> dict[str, Any]:
        """The run's telemetry summary as flat ``telemetry.*`` figures (J per evaluated token)."""
        return telemetry_columns(self.data)

    def to_dicts(self) -> list[dict[str, Any]]:
        """One row per scored chunk."""
        chunks = self.data.get("chunks") or []
        return [dict(c) for c in chunks]

    def to_pandas(self) -> Any:
        """The chunks as a pandas DataFrame."""
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]

        return pd.DataFrame(self.to_dicts())


@dataclass
class ReplayResult:
    """A serving replay: the vLLM-compatible summary (its field names) with the provenance,
    and every request's record (warmup requests flagged)."""

    summary: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def _from_json(cls, items: list[str], summary: str) -> ReplayResult:
        return cls(json.loads(summary) if summary else {}, [json.loads(i) for i in items])

    @property
    def provenance(self) -> dict[str, Any] | None:
        p = self.summary.get("provenance")
        return p if isinstance(p, dict) else None

    @property
    def telemetry(self) -> dict[str, Any]:
        """The run's telemetry summary as flat ``telemetry.*`` figures (J per output token)."""
        return telemetry_columns(self.summary)

    @property
    def server_metrics(self) -> dict[str, Any] | None:
        """The server's Prometheus metrics (HTTP targets): ``counters`` (increase over the run,
        by series), ``gauges`` (series), ``failures``."""
        m = self.summary.get("server_metrics")
        return m if isinstance(m, dict) else None

    def gauges_to_pandas(self) -> Any:
        """The server's gauges as a DataFrame: one row per scrape and series (``series``,
        ``t_s``, ``value``)."""
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]

        gauges = (self.server_metrics or {}).get("gauges") or {}
        rows = [{"series": k, "t_s": t, "value": v} for k, g in gauges.items() for t, v in g.get("points", [])]
        return pd.DataFrame(rows, columns=["series", "t_s", "value"])

    def to_dicts(self) -> list[dict[str, Any]]:
        """One flat dict per request, in completion order."""
        return [dict(r) for r in self.records]

    def to_pandas(self) -> Any:
        """The requests as a pandas DataFrame (times in ns, as the records keep them)."""
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]

        return pd.DataFrame(self.to_dicts())

    def tokens(self) -> list[dict[str, Any]]:
        """One row per generated token: request id, its index, and its arrival after the
        request was sent (ns); the first token's is the TTFT."""
        rows = []
        for r in self.records:
            first = r.get("first_token_ns")
            if first is None:
                continue
            t = int(first) - int(r.get("sent_ns", 0))
            rows.append({"id": r.get("id"), "token": 0, "ns": t})
            for i, gap in enumerate(r.get("itl_ns") or [], start=1):
                t += int(gap)
                rows.append({"id": r.get("id"), "token": i, "ns": t})
        return rows

    def tokens_to_pandas(self) -> Any:
        """``tokens()`` as a pandas DataFrame."""
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]

        return pd.DataFrame(self.tokens())


@dataclass
class PlacementResult:
    """A placement comparison: per arm and metric the samples, median, CI, ratio to the
    baseline and p-value, what was requested and observed; every trial; the provenance."""

    report: dict[str, Any]
    trials: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def _from_json(cls, items: list[str], report: str) -> PlacementResult:
        trials = [json.loads(i) for i in items]
        parsed = json.loads(report) if report else {"arms": [], "trials": trials}
        return cls(parsed, parsed.get("trials", trials))

    @property
    def provenance(self) -> dict[str, Any] | None:
        p = self.report.get("provenance")
        return p if isinstance(p, dict) else None

    @property
    def arms(self) -> list[dict[str, Any]]:
        arms = self.report.get("arms", [])
        return arms if isinstance(arms, list) else []

    def to_dicts(self) -> list[dict[str, Any]]:
        """One row per arm and metric, without the nested requested/observed placement."""
        skip = {"requested", "observed"}
        return [{k: v for k, v in a.items() if k not in skip} for a in self.arms]

    def to_pandas(self) -> Any:
        """``to_dicts()`` as a pandas DataFrame."""
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]

        return pd.DataFrame(self.to_dicts())


# The run's fields ``RunsResult.to_dicts`` and ``RecordsResult.to_dicts`` show, in order (the
# provenance stays in ``runs``).
RUN_COLUMNS = (
    "id",
    "kind",
    "source",
    "label",
    "build_commit",
    "build_number",
    "machine",
    "host",
    "started_at",
    "stored_at",
    "benchkit_version",
    "status",
    "error",
    "n_records",
)


def _run_id(run: dict[str, Any]) -> Any:
    # A run id is the library's RunId, a bare integer in JSON.
    return run.get("id")


@dataclass
class RunsResult:
    """Stored runs (``Store.runs``): each the library's run, provenance included, oldest first."""

    runs: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def _from_json(cls, text: str) -> RunsResult:
        return cls(json.loads(text))

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.runs)

    def to_dicts(self) -> list[dict[str, Any]]:
        """One row per run: ``id``, ``kind``, ``source``, ``label``, ``build_commit``,
        ``build_number``, ``machine``, ``host``, ``started_at``, ``stored_at``,
        ``benchkit_version``, ``status``, ``error``, ``n_records`` (no provenance)."""
        return [{k: r.get(k) for k in RUN_COLUMNS} for r in self.runs]

    def to_pandas(self) -> Any:
        """``to_dicts()`` as a pandas DataFrame (those columns even when there is no run)."""
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]

        return pd.DataFrame(self.to_dicts(), columns=list(RUN_COLUMNS))


@dataclass
class RecordsResult:
    """Stored records (``Store.records``): each the library's entry (``id``, ``seq``, ``run``,
    ``record`` with its ``params``, ``metrics`` and their raw ``samples``, ``telemetry`` and
    the full ``result``), in run then record order."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def _from_json(cls, text: str) -> RecordsResult:
        return cls(json.loads(text))

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.entries)

    def to_dicts(self) -> list[dict[str, Any]]:
        """One flat row per record: ``record`` (its id), ``run`` (the run's id), ``source``,
        ``label``, ``build_commit``, ``build_number``, ``machine``, ``started_at``, then
        ``kind``, ``test``, ``model``, ``status``, ``error``, each parameter by its name (as
        text, as the store keeps and filters match it), each metric's mean by its name (``ts``,
        ``ttft``, ``ppl``...) with ``<metric>_stddev``, ``<metric>_n`` and ``<metric>_unit``,
        and the telemetry summary as ``telemetry.*`` columns."""
        rows = []
        for e in self.entries:
            run, rec = e.get("run") or {}, e.get("record") or {}
            row: dict[str, Any] = {"record": e.get("id"), "run": _run_id(run)}
            for k in ("source", "label", "build_commit", "build_number", "machine", "started_at"):
                row[k] = run.get(k)
            row.update({"kind": rec.get("kind"), "test": rec.get("name"), "model": rec.get("model")})
            row.update({"status": rec.get("status"), "error": rec.get("error")})
            row.update(rec.get("params") or {})
            for name, m in (rec.get("metrics") or {}).items():
                row[name] = m.get("mean")
                row[f"{name}_stddev"] = m.get("stddev")
                row[f"{name}_n"] = m.get("n")
                row[f"{name}_unit"] = m.get("unit")
            row.update(telemetry_columns(rec))
            rows.append(row)
        return rows

    def to_pandas(self) -> Any:
        """``to_dicts()`` as a pandas DataFrame."""
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]

        return pd.DataFrame(self.to_dicts())

    def samples(self) -> list[dict[str, Any]]:
        """One row per raw sample (repetition, request): ``record``, ``run``, ``test``,
        ``metric``, ``idx``, ``value``. Records stored from a mean alone (llama-bench's csv and
        sql) have none."""
        rows = []
        for e in self.entries:
            rec = e.get("record") or {}
            for name, m in (rec.get("metrics") or {}).items():
                for i, v in enumerate(m.get("samples") or []):
                    rows.append(
                        {
                            "record": e.get("id"),
                            "run": _run_id(e.get("run") or {}),
                            "test": rec.get("name"),
                            "metric": name,
                            "idx": i,
                            "value": v,
                        }
                    )
        return rows

    def samples_to_pandas(self) -> Any:
        """``samples()`` as a pandas DataFrame."""
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]

        return pd.DataFrame(self.samples(), columns=["record", "run", "test", "metric", "idx", "value"])


@dataclass
class Comparison:
    """A baseline/candidate comparison (``Store.compare``), as ``benchkit compare`` makes it:
    ``data`` is the library's (``rows``, ``columns``, ``common``, ``ignored``,
    ``baseline_runs``, ``unmatched``...); ``to_markdown()`` and ``to_csv()`` print what
    ``-o md`` and ``-o csv`` print."""

    data: dict[str, Any]
    markdown: str = ""
    csv: str = ""
    has_regression: bool = False
    """Whether a row regressed beyond the noise (``--fail-on regression``)."""
    has_change: bool = False
    """Whether a row changed beyond the noise, either way (``--fail-on change``)."""

    @classmethod
    def _from_json(cls, text: str) -> Comparison:
        o = json.loads(text)
        return cls(o["comparison"], o["markdown"], o["csv"], bool(o["has_regression"]), bool(o["has_change"]))

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The joined rows, as the library's JSON: ``kind``, ``test``, ``model``, ``key``,
        ``metric``, ``unit``, ``higher_is_better``, ``baseline`` and ``candidate`` (``mean``,
        ``stddev``, ``n``, ``records``), ``ratio``, ``ci`` (``[low, high]`` or None), ``p``,
        ``verdict`` (``improvement``, ``regression``, ``no_change``, ``inconclusive``)."""
        rows = self.data.get("rows", [])
        return rows if isinstance(rows, list) else []

    def __len__(self) -> int:
        return len(self.rows)

    def to_markdown(self) -> str:
        return self.markdown

    def to_csv(self) -> str:
        return self.csv

    def to_dicts(self) -> list[dict[str, Any]]:
        """One flat row per compared row: ``kind``, ``test``, ``model``, the differing key
        columns (``data["columns"]``) by name, ``metric``, ``unit``, ``baseline_mean``,
        ``baseline_stddev``, ``baseline_n``, the same for ``candidate_``, ``ratio``, ``ci_low``,
        ``ci_high``, ``p``, ``verdict``."""
        out = []
        for r in self.rows:
            row: dict[str, Any] = {"kind": r.get("kind"), "test": r.get("test"), "model": r.get("model")}
            row.update(r.get("key") or {})
            row.update({"metric": r.get("metric"), "unit": r.get("unit")})
            for side in ("baseline", "candidate"):
                s = r.get(side) or {}
                for k in ("mean", "stddev", "n"):
                    row[f"{side}_{k}"] = s.get(k)
            ci = r.get("ci") or [None, None]
            row.update({"ratio": r.get("ratio"), "ci_low": ci[0], "ci_high": ci[1]})
            row.update({"p": r.get("p"), "verdict": r.get("verdict")})
            out.append(row)
        return out

    def to_pandas(self) -> Any:
        """``to_dicts()`` as a pandas DataFrame."""
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]

        return pd.DataFrame(self.to_dicts())


@dataclass
class ImportReport:
    """What ``Store.import_file`` stored: the runs it created (their ids) and how many records."""

    runs: list[int]
    records: int
