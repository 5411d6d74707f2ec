"""Rows in transit between actors (docs/architecture.md section 7): what a host answers for
all its chains in one call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from mlts_ray.results.schemas import to_batch


@dataclass(frozen=True, slots=True)
class Bundle:
    """Several pieces' rows in one record batch per table, each piece a span of it: what a
    host answers for all its chains in one call. One batch per table is what makes it cheap
    to ship: Ray's cost is per buffer, not per byte (docs/architecture.md section 7)."""

    batches: Mapping[str, pa.RecordBatch]
    spans: tuple[Mapping[str, tuple[int, int]], ...]  # per piece: table -> (offset, rows)

    def piece(self, k: int) -> dict[str, pa.RecordBatch]:
        return {name: self.batches[name].slice(start, n)
                for name, (start, n) in self.spans[k].items()}


def bundle(run_id: str, round_: int, pieces: Sequence[Mapping[str, Sequence[dict[str, Any]]]]
           ) -> Bundle:
    """``pieces`` (each a mapping of table to rows) as one ``Bundle``."""
    rows: dict[str, list[dict[str, Any]]] = {}
    spans = []
    for piece in pieces:
        span = {}
        for name, got in piece.items():
            mine = rows.setdefault(name, [])
            span[name] = (len(mine), len(got))
            mine.extend(got)
        spans.append(span)
    return Bundle({name: to_batch(name, run_id, round_, r) for name, r in rows.items()},
                  tuple(spans))
