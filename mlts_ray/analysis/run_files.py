"""The first half of ``mlts verify``: the manifest is bound to the run id, and every table file
of every finished round is present, has its table's schema and rows of this run and round, and
is bound by the digest chain (``runtime/digests.py``). Returns the config and the tables, each
file read once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlts_ray.config import Config
from mlts_ray.errors import ContentError, RunError
from mlts_ray.mlts.simulation import run_id_of
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
from mlts_ray.runtime.storage import LOCK, Location, locate
from mlts_ray.results.schemas import KEYS, NULLABLE, SCHEMAS, TABLES


class VerifyError(ContentError):
    """The run directory fails verification; ``subject`` names the table, round and row, the
    block, the trade or the manifest key."""


@dataclass(slots=True)
class StoredRun:
    manifest: dict[str, Any]
    cfg: Config
    rounds: int  # rounds done
    tables: dict[str, pd.DataFrame]
    #: The first file the digest chain does not bind, raised by ``check_bound`` -- after the
    #: chain and derived checks, which name an edit more precisely (the block, the row).
    unbound: VerifyError | None = None

    def check_bound(self) -> None:
        if self.unbound is not None:
            raise self.unbound


def read_run(run_dir: str | Path) -> StoredRun:
    root = locate(run_dir)
    manifest, cfg = _bound_manifest(root)
    rounds = manifest["rounds_done"]
    _check_layout(root, rounds, manifest["status"] == "complete")
    tables = {t: [] for t in TABLES}
    prev, unbound = GENESIS, None
    for rnd in range(rounds):
        files = {}
        for table in TABLES:
            data = _read(root / table / table_file(rnd), f"{table} round {rnd}")
            tables[table].append(_check_file(data, table, rnd, manifest["run_id"]))
            files[table] = file_digest(data)
        try:
            prev = _check_record(root, rnd, prev, files)
        except VerifyError as err:
            unbound = unbound or err
            prev = None
    if unbound is None and prev != manifest.get("digest_head", GENESIS if rounds == 0 else None):
        unbound = VerifyError(f"{MANIFEST}: digest_head", "does not match the digest records: "
                              "the manifest or a round was rewritten")
    frames = {t: pa.concat_tables(parts).to_pandas() if parts
              else SCHEMAS[t].empty_table().to_pandas() for t, parts in tables.items()}
    return StoredRun(manifest, cfg, rounds, frames, unbound)


#: What ``mlts report`` writes into a run: the one folder verify does not read.
REPORT = "report"


def _check_layout(root: Location, rounds: int, complete: bool) -> None:
    """Every file and folder under the run is one the run or ``mlts report`` wrote: a copy, a
    misnamed round, a round beyond the manifest's, a new folder is named (the loaders read only
    the run's own files, but a bare ``pd.read_parquet`` of a table folder reads them all)."""
    # an interrupted run may hold some files of the round it was cut short in
    written = range(rounds if complete else rounds + 1)
    want = {MANIFEST, LOCK, DIGESTS, REPORT, *TABLES}
    want |= {f"{DIGESTS}/{record_name(r)}" for r in written}
    want |= {f"{t}/{table_file(r)}" for t in TABLES for r in written}
    for path, is_dir in root.tree():
        top, _, rest = path.partition("/")
        if path in want or top == REPORT:
            continue
        name = path.rsplit("/", 1)[-1]
        if not complete and not is_dir and name.startswith(".") and name.endswith(".tmp"):
            continue  # a killed writer's temporary: a resume removes it
        what = "folder" if is_dir else "file"
        raise VerifyError(path, f"a {what} the run did not write (nor mlts report): remove it, "
                          "or keep it outside the run directory")


def _read(where: Location, subject: str) -> bytes:
    try:
        return where.read_bytes()
    except FileNotFoundError:
        raise VerifyError(subject, f"missing: no file {where.name} (the round is not complete)") \
            from None
    except OSError as err:
        raise VerifyError(subject, f"unreadable: {err}") from None


def _bound_manifest(root: Location) -> tuple[dict[str, Any], Config]:
    """The manifest, its config re-validated, and every restated value checked against it."""
    if not (root / MANIFEST).is_file():
        raise RunError(str(root), f"not a run directory (no {MANIFEST})")
    manifest, cfg = checked(root, MANIFEST, VerifyError)
    if run_id_of(cfg) != manifest["run_id"]:
        raise VerifyError(f"{MANIFEST}: config_toml", f"hashes to run id {run_id_of(cfg)}, "
                          f"not {manifest['run_id']}: the config was changed")
    _check_restated(manifest, cfg)
    if manifest["status"] == "complete" and manifest["rounds_done"] != cfg.experiment.rounds:
        raise VerifyError(f"{MANIFEST}: rounds_done", f"{manifest['rounds_done']} of "
                          f"{cfg.experiment.rounds} rounds in a run marked complete")
    return manifest, cfg


def _check_restated(manifest: dict[str, Any], cfg: Config) -> None:
    """Every value the manifest restates from its config must be the config's."""
    stated = cfg.model_dump(mode="json")
    for section, values in stated.items():
        got = manifest["config"].get(section)
        for key, value in (values.items() if isinstance(values, dict) else [("", values)]):
            mine = got.get(key) if isinstance(got, dict) and key else got
            if mine != value:
                dotted = f"config.{section}" + (f".{key}" if key else "")
                raise VerifyError(f"{MANIFEST}: {dotted}", f"is {mine!r} but the run's config "
                                  f"(bound to its run id) says {value!r}")
    if set(manifest["config"]) != set(stated):
        raise VerifyError(f"{MANIFEST}: config", "has sections the run's config does not")
    for key, value in (("seed", cfg.experiment.seed), ("rounds", cfg.experiment.rounds),
                       ("name", cfg.experiment.name)):
        if key in manifest and manifest[key] != value:
            raise VerifyError(f"{MANIFEST}: {key}", f"is {manifest[key]!r} but the config says "
                              f"{value!r}")


def _check_file(data: bytes, table: str, rnd: int, run_id: str) -> pa.Table:
    subject = f"{table} round {rnd}"
    try:
        stored = pq.read_table(pa.BufferReader(data))
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise VerifyError(subject, f"not a readable Parquet file: {err}") from None
    if not stored.schema.equals(SCHEMAS[table]):
        raise VerifyError(subject, f"schema differs from the {table} table's: "
                          f"{_schema_difference(stored.schema, SCHEMAS[table])}")
    _check_nulls(stored, table, subject)
    _check_keys(stored, table, subject)
    for column, value in (("run_id", run_id), ("round", rnd)):
        values = stored.column(column).to_pylist()
        for i, got in enumerate(values):
            if got != value:
                raise VerifyError(f"{subject} row {i}", f"{column} is {got!r}, not {value!r}")
    return stored


def _check_keys(stored: pa.Table, table: str, subject: str) -> None:
    """One row per key (``KEYS``): a duplicated row, or a trade listed twice with two
    statuses, is named by the later row and the one it repeats."""
    key = KEYS[table]
    seen: dict[tuple, int] = {}
    for i, values in enumerate(zip(*(stored.column(c).to_pylist() for c in key), strict=True)):
        first = seen.setdefault(values, i)
        if first != i:
            said = ", ".join(f"{c} {v!r}" for c, v in zip(key, values, strict=True))
            raise VerifyError(f"{subject} row {i}", f"repeats row {first}'s {said}: one row "
                              f"per {' and '.join(key)} in a round")


def _check_nulls(stored: pa.Table, table: str, subject: str) -> None:
    """No null outside the table's nullable columns and no NaN anywhere (``NULLABLE``): every
    later check may then read a value where it expects one."""
    nullable = NULLABLE.get(table, frozenset())
    for field in stored.schema:
        column = stored.column(field.name)
        if column.null_count and field.name not in nullable:
            first = column.is_null().to_pylist().index(True)
            raise VerifyError(f"{subject} row {first}", f"{field.name} is null")
        if pa.types.is_floating(field.type):
            nan = pc.fill_null(pc.is_nan(column), False).to_pylist()
            if any(nan):
                raise VerifyError(f"{subject} row {nan.index(True)}", f"{field.name} is NaN")


def _schema_difference(got: pa.Schema, want: pa.Schema) -> str:
    for field in want:
        if field.name not in got.names:
            return f"no column {field.name}"
        if not got.field(field.name).type.equals(field.type):
            return f"column {field.name} is {got.field(field.name).type}, not {field.type}"
    extra = [n for n in got.names if n not in want.names]
    return f"extra columns {extra}" if extra else "columns in another order"


def _check_record(root: Location, rnd: int, prev: str | None, files: dict[str, str]) -> str:
    """This round's digest record links ``prev`` and holds these file digests; its hash."""
    subject = f"{DIGESTS} round {rnd}"
    data = _read(root / DIGESTS / record_name(rnd), subject)
    try:
        record = json.loads(data)
        stored_files, stored_prev = record["files"], record["prev"]
    except (ValueError, KeyError, TypeError):
        raise VerifyError(subject, "not a digest record") from None
    if prev is not None and stored_prev != prev:
        raise VerifyError(subject, "does not link to the previous round's record")
    for table, digest in files.items():
        if not isinstance(stored_files, dict) or stored_files.get(table) != digest:
            raise VerifyError(f"{table} round {rnd}", "file differs from the one the run wrote "
                              "(its SHA-256 is not the digest record's)")
    if data != encode_record(rnd, stored_prev, files):
        raise VerifyError(subject, "is not in canonical form")
    return record_hash(data)
