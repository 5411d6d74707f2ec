"""The run directory: ``manifest.json`` plus one Parquet dataset per table.

Each round's rows of a table go to ``<table>/round-000042.parquet``, written to a temporary
name and moved into place, so a reader (or a crash) only ever sees whole files; the manifest's
``rounds_done`` moves only after every table of the round is stored. The directory may be a
local path or any pyarrow filesystem URI (see ``storage``).
"""

from __future__ import annotations

import json
import tomllib
import platform
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mlts_ray.config import PLACEMENT_KEYS, Config, build_config, dotted
from mlts_ray.errors import ConfigError, RunError
from mlts_ray.runtime.storage import Location, locate
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


class RunSink:
    """Writes one run's directory; the only writer of ``manifest.json``."""

    def __init__(self, root: Location, run_id: str, manifest: Mapping[str, Any]) -> None:
        self.location, self.run_id = root, run_id
        self.manifest: dict[str, Any] = {
            "run_id": run_id, "status": "running", "rounds_done": 0,
            "tables": list(TABLES), "versions": _versions(), **manifest,
        }

    @property
    def root(self) -> Path | str:
        """The run directory: a Path for local runs, the URI otherwise."""
        return Path(self.location.path) if not self.location.scheme else str(self.location)

    @classmethod
    def create(cls, out: str | Path, run_id: str, manifest: Mapping[str, Any]) -> RunSink:
        """A new directory ``out/run_id`` (``-2``, ``-3``, ... when taken)."""
        base = locate(out)
        try:
            base.fs.create_dir(base.path, recursive=True)
            name, n = run_id, 1
            while (base / name).exists():
                n += 1
                name = f"{run_id}-{n}"
            root = base / name
            for table in TABLES:
                root.fs.create_dir((root / table).path, recursive=True)
        except OSError as err:
            raise RunError(str(out), f"cannot create the run directory: {err}") from None
        sink = cls(root, run_id, manifest)
        sink._write_manifest()
        return sink

    @classmethod
    def reopen(cls, run_dir: str | Path, cfg: Config) -> RunSink:
        """An interrupted run directory, to continue with the same configuration: a differing
        key is refused by name; files of rounds past ``rounds_done`` (a round cut short) go."""
        root = locate(run_dir)
        manifest_file = root / MANIFEST
        if not manifest_file.is_file():
            raise RunError(str(run_dir), f"not a run directory (no {MANIFEST})")
        manifest = json.loads(manifest_file.read_bytes())
        if manifest.get("status") == "complete":
            raise RunError(str(run_dir), "is complete: nothing to resume")
        stored = dotted(build_config(tomllib.loads(manifest["config_toml"])))
        wanted = dotted(cfg)
        for key in sorted(stored):
            if key.split(".", 1)[1] in PLACEMENT_KEYS:
                continue  # where a run executes does not change its results
            if stored[key] != wanted.get(key):
                raise ConfigError(
                    key, f"is {wanted.get(key)!r} but the run being resumed used {stored[key]!r}"
                )
        done = int(manifest["rounds_done"])
        for table in TABLES:
            for path in (root / table).files(".parquet"):
                if int(path.rsplit("round-", 1)[1].split(".")[0]) >= done:
                    root.fs.delete_file(path)
        sink = cls(root, manifest["run_id"], manifest)
        sink.manifest = manifest
        return sink

    def _write_manifest(self) -> None:
        text = json.dumps(self.manifest, indent=2, sort_keys=True, default=str)
        (self.location / MANIFEST).write_atomic(text.encode())

    def write_round(self, round_: int, tables: Mapping[str, list[dict[str, Any]]]) -> None:
        """One round's rows, table by table."""
        self.write_batches(round_, {
            table: to_batch(table, self.run_id, round_, tables.get(table, [])) for table in TABLES
        })

    def write_batches(self, round_: int, batches: Mapping[str, pa.RecordBatch]) -> None:
        """One round's record batches, each table's file complete before ``rounds_done`` moves."""
        for table in TABLES:
            batch = batches[table] if table in batches else to_batch(table, self.run_id, round_, [])
            buffer = pa.BufferOutputStream()
            pq.write_table(pa.Table.from_batches([batch]), buffer)
            target = self.location / table / f"round-{round_:06d}.parquet"
            target.write_atomic(buffer.getvalue().to_pybytes())
        self.manifest["rounds_done"] = round_ + 1
        self._write_manifest()

    def finish(self, status: str, **extra: Any) -> None:
        self.manifest.update(status=status, **extra)
        self._write_manifest()
