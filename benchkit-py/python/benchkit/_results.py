"""Typed results: the library's records, with their provenance, as dicts or DataFrames."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator


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
        """One flat dict per record, without the nested provenance (see ``provenance``)."""
        return [{k: v for k, v in r.items() if k != "provenance"} for r in self.records]

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
