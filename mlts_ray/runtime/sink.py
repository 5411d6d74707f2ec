"""The run directory: ``manifest.json`` plus one Parquet dataset per table.

Each round's rows of a table go to ``<table>/round-000042.parquet``, written to a temporary
name and renamed, so a reader (or a crash) only ever sees whole files; the manifest's
``rounds_done`` moves only after every table of the round is on disk.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mlts_ray.errors import RunError
from mlts_ray.runtime.tables import TABLES, to_batch

MANIFEST = "manifest.json"


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("mlts_ray", "pynacl", "pyarrow", "pandas", "numpy", "ray"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class RunSink:
    """Writes one run's directory; the only writer of ``manifest.json``."""

    def __init__(self, root: Path, run_id: str, manifest: Mapping[str, Any]) -> None:
        self.root, self.run_id = root, run_id
        self.manifest: dict[str, Any] = {
            "run_id": run_id, "status": "running", "rounds_done": 0,
            "tables": list(TABLES), "versions": _versions(), **manifest,
        }

    @classmethod
    def create(cls, out: Path, run_id: str, manifest: Mapping[str, Any]) -> RunSink:
        """A new directory ``out/run_id`` (``-2``, ``-3``, ... when taken)."""
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise RunError(str(out), f"cannot create the output directory: {err}") from None
        name, n = run_id, 1
        while True:
            try:
                (out / name).mkdir()
                break
            except FileExistsError:
                n += 1
                name = f"{run_id}-{n}"
        sink = cls(out / name, run_id, manifest)
        for table in TABLES:
            (sink.root / table).mkdir()
        sink._write_manifest()
        return sink

    def _write_manifest(self) -> None:
        text = json.dumps(self.manifest, indent=2, sort_keys=True, default=str)
        _atomic_write(self.root / MANIFEST, text.encode())

    def write_round(self, round_: int, tables: Mapping[str, list[dict[str, Any]]]) -> None:
        """One round's rows, table by table."""
        self.write_batches(round_, {
            table: to_batch(table, self.run_id, round_, tables.get(table, [])) for table in TABLES
        })

    def write_batches(self, round_: int, batches: Mapping[str, pa.RecordBatch]) -> None:
        """One round's record batches, each table's file complete before ``rounds_done`` moves."""
        for table in TABLES:
            batch = batches[table] if table in batches else to_batch(table, self.run_id, round_, [])
            sink = pa.BufferOutputStream()
            pq.write_table(pa.Table.from_batches([batch]), sink)
            _atomic_write(self.root / table / f"round-{round_:06d}.parquet", sink.getvalue().to_pybytes())
        self.manifest["rounds_done"] = round_ + 1
        self._write_manifest()

    def finish(self, status: str, **extra: Any) -> None:
        self.manifest.update(status=status, **extra)
        self._write_manifest()
