"""The run directory: ``manifest.json`` plus one Parquet dataset per table.

Each round's rows of a table go to ``<table>/round-000042.parquet``, written to a temporary
name and moved into place, so a reader (or a crash) only ever sees whole files; the manifest's
``rounds_done`` moves only after every table of the round is stored. The directory may be a
local path or any pyarrow filesystem URI (see ``storage``).
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mlts_ray.config import PLACEMENT_KEYS, Config, dotted
from mlts_ray.errors import ConfigError, MltsError, RunError
from mlts_ray.runtime.digests import (
    DIGESTS,
    GENESIS,
    encode_record,
    file_digest,
    record_hash,
    record_name,
    table_file,
)
from mlts_ray.runtime.manifest import MANIFEST, checked
from mlts_ray.runtime.storage import Location, RunLock, locate
from mlts_ray.results.schemas import TABLES, to_batch



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
        self._lock: RunLock | None = None

    @property
    def root(self) -> Path | str:
        """The run directory: a Path for local runs, the URI otherwise."""
        return Path(self.location.path) if not self.location.scheme else str(self.location)

    @classmethod
    def create(cls, out: str | Path | Location, run_id: str, manifest: Mapping[str, Any]) -> RunSink:
        """A new directory ``out/run_id`` (``-2``, ``-3``, ... when taken), locked for this
        writer. Concurrent runs of one config into one ``out`` each get their own directory
        (the name is taken by an exclusive mkdir). If the directory cannot be completed (a
        full disk), it is removed again: nothing half-made is left."""
        base = locate(out)
        try:
            if base.is_file():
                raise RunError(str(out), "is a file, not a directory (--out)")
            base.fs.create_dir(base.path, recursive=True)
            name, n = run_id, 1
            while not (base / name).make_dir_exclusive():
                n += 1
                name = f"{run_id}-{n}"
        except OSError as err:
            raise RunError(str(out), f"cannot create the run directory: {err}") from None
        root = base / name
        sink = cls(root, run_id, manifest)
        try:
            sink._lock = RunLock(root)
            for table in (*TABLES, DIGESTS):
                root.fs.create_dir((root / table).path, recursive=True)
            sink._write_manifest()
        except OSError as err:
            sink.close()
            try:
                root.fs.delete_dir(root.path)
            except OSError:
                pass  # as much as the filesystem lets us take back
            raise RunError(str(root), f"cannot create the run directory: {err}") from None
        return sink

    @classmethod
    def reopen(cls, run_dir: str | Path, cfg: Config) -> RunSink:
        """An interrupted run directory, to continue with the same configuration: a differing
        key is refused by name; files of rounds past ``rounds_done`` (a round cut short) go."""
        root = locate(run_dir)
        if not (root / MANIFEST).is_file():
            raise RunError(str(run_dir), f"not a run directory (no {MANIFEST})")
        lock = RunLock(root)  # before reading: a live writer may be changing the manifest
        try:
            manifest, stored_cfg = checked(root, str(root / MANIFEST), purpose=", cannot resume")
            if manifest["status"] == "complete":
                raise RunError(str(run_dir), "is complete: nothing to resume")
            _check_same_config(stored_cfg, cfg)
        except BaseException:
            lock.release()
            raise
        root.delete_temporaries()
        root.fs.create_dir((root / DIGESTS).path, recursive=True)  # absent in older runs
        for table in (*TABLES, DIGESTS):
            (root / table).delete_temporaries()
        manifest.pop("error", None)  # the failure being resumed from is over
        sink = cls(root, manifest["run_id"], manifest)
        sink.manifest = manifest
        sink._lock = lock
        sink._discard_rounds_from(int(manifest["rounds_done"]))
        return sink

    def _write_manifest(self) -> None:
        text = json.dumps(self.manifest, indent=2, sort_keys=True, default=str)
        (self.location / MANIFEST).write_atomic(text.encode())

    def write_batches(self, round_: int, batches: Mapping[str, pa.RecordBatch]) -> None:
        """One round's record batches, each table's file complete before ``rounds_done`` moves;
        then the round's digest record (``digests``), then the manifest with the new head."""
        files = {}
        for table in TABLES:
            batch = batches[table] if table in batches else to_batch(table, self.run_id, round_, [])
            buffer = pa.BufferOutputStream()
            pq.write_table(pa.Table.from_batches([batch]), buffer)
            data = buffer.getvalue().to_pybytes()
            (self.location / table / table_file(round_)).write_atomic(data)
            files[table] = file_digest(data)
        record = encode_record(round_, self.manifest.get("digest_head", GENESIS), files)
        (self.location / DIGESTS / record_name(round_)).write_atomic(record)
        self.manifest["rounds_done"] = round_ + 1
        self.manifest["digest_head"] = record_hash(record)
        self._write_manifest()

    def finish(self, status: str, **extra: Any) -> None:
        self.manifest.update(status=status, **extra)
        self._write_manifest()

    def fail(self, reason: str) -> None:
        """Mark the run ``failed`` with ``reason``, if the manifest can still be written. If it
        cannot (the disk is still full), it keeps saying ``running`` with the rounds done, and
        with its lock gone that reads as a crashed run, which ``--resume`` continues."""
        try:
            self.finish("failed", error=reason)
            return
        except OSError:
            pass
        try:  # make room: the files of the round cut short are not part of the run anyway,
            # and the lock's reserve is there for exactly this
            self._discard_rounds_from(int(self.manifest["rounds_done"]))
            if self._lock is not None:
                self._lock.free_reserve()
            self.finish("failed", error=reason)
        except OSError:
            pass

    def _discard_rounds_from(self, first: int) -> None:
        for table, suffix in [*((t, ".parquet") for t in TABLES), (DIGESTS, ".json")]:
            for path in (self.location / table).files(suffix):
                if int(path.rsplit("round-", 1)[1].split(".")[0]) >= first:
                    self.location.fs.delete_file(path)

    def close(self) -> None:
        """Release the writer's lock (the run can be resumed or verified by anyone)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> RunSink:
        return self

    def __exit__(self, kind, err, tb) -> None:
        # Whatever stopped the run between opening and finishing it, the directory must say
        # so: a run still ``running`` here failed before its round loop could record why.
        if err is not None and self.manifest.get("status") == "running":
            if isinstance(err, KeyboardInterrupt):
                try:
                    self.finish("interrupted")
                except OSError:
                    pass
            else:
                self.fail(str(err) if isinstance(err, MltsError) else f"{kind.__name__}: {err}")
        self.close()


def _check_same_config(stored_cfg: Config, cfg: Config) -> None:
    """A resumed run must be the same experiment: a differing key is refused by name."""
    stored, wanted = dotted(stored_cfg), dotted(cfg)
    for key in sorted(stored):
        if key.split(".", 1)[1] in PLACEMENT_KEYS:
            continue  # where a run executes does not change its results
        if stored[key] != wanted.get(key):
            raise ConfigError(
                key, f"is {wanted.get(key)!r} but the run being resumed used {stored[key]!r}"
            )
