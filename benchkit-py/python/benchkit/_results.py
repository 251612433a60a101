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
