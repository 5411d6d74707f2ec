"""``mlts sweep``: one run per point of the config's ``[sweep]`` (a cartesian product), under
``<out>/<sweep_id>/``, plus ``combined.parquet``: the points' ``consensus`` rows with every swept
key as a column. Every point is validated before the first one runs (``config``).

``sweep.json`` records the sweep's config and, per point, its run directory and status, after
every point: an interrupted or failed sweep (Ctrl-C, a kill, a full disk) continues with
``mlts sweep CONFIG --resume SWEEP_DIR`` -- finished points are kept, the interrupted one is
resumed, the rest run -- and its combined table is an uninterrupted sweep's."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import tomli_w

from mlts_ray.runtime.manifest import read_manifest
from mlts_ray.runtime.run_dir import load_table
from mlts_ray.config import Config, from_toml, sweep_points, to_toml, with_values
from mlts_ray.errors import ConfigError, MltsError, RunError
from mlts_ray.mlts.simulation import run_id_of
from mlts_ray.runtime.driver import Interrupted
from mlts_ray.runtime.manifest import MANIFEST
from mlts_ray.runtime.sink import _check_same_config
from mlts_ray.runtime.storage import Location, locate

SWEEP_MANIFEST = "sweep.json"
COMBINED = "combined.parquet"
RESUMABLE = ("running", "interrupted", "failed")  # a point's run that --resume continues
RunOne = Callable[..., Any]  # (point config, out, resume=RUN_DIR or None) -> run dir


def sweep_id_of(cfg: Config) -> str:
    digest = hashlib.sha256(tomli_w.dumps(cfg.model_dump(mode="json")).encode()).hexdigest()[:10]
    return f"{cfg.experiment.name}-sweep-{digest}"


def run_sweep(
    cfg: Config, out: str | Path, run_one: RunOne,
    progress: Callable[[int, int], None] | None = None, resume: str | Path | None = None,
) -> str:
    """Run every point (or, with ``resume``, the points that sweep has not finished); returns
    the sweep directory. ``run_one`` is the runtime's run."""
    if not cfg.sweep:
        raise ConfigError("sweep", "is empty: nothing to sweep (use `mlts run` for one run)")
    points = sweep_points(cfg)
    configs = sweep_configs(cfg)  # every point checked before the first runs
    root, record = _reopen(resume, cfg) if resume is not None else _create(out, cfg)
    done = {i: entry for i, entry in enumerate(record["points"])}
    frames = []
    for i, (point, point_cfg) in enumerate(zip(points, configs, strict=True)):
        entry = done.get(i)
        if entry is None or entry.get("status") != "complete":
            again = (str(root / entry["run"])
                     if entry and entry.get("status") in RESUMABLE else None)
            try:
                run_dir = str(run_one(point_cfg, str(root), resume=again))
            except Interrupted as err:
                _note(root, record, i, point, err.subject, "interrupted")
                raise Interrupted(str(root), f"interrupted at point {i + 1} of {len(points)}") \
                    from None
            except MltsError as err:
                # Recorded so that --resume continues this point's run (its finished rounds
                # are kept) once the cause is fixed, instead of starting it again.
                run = root / (again.rsplit("/", 1)[-1] if again else run_id_of(point_cfg))
                if (run / MANIFEST).is_file():
                    _note(root, record, i, point, str(run), "failed")
                raise RunError(err.subject, f"{err.why} (point {i + 1} of {len(points)}; the "
                               f"finished points are in {root}: once the cause is fixed, "
                               "continue with `mlts sweep CONFIG --resume SWEEP_DIR`)") from None
            entry = _note(root, record, i, point, run_dir, "complete")
        frames.append(_with_params(load_table(str(root / entry["run"]), "consensus"), point, i))
        if progress:
            progress(i + 1, len(points))
    combined = pd.concat(frames, ignore_index=True)
    buffer = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(combined, preserve_index=False), buffer)
    (root / COMBINED).write_atomic(buffer.getvalue().to_pybytes())
    return str(root) if root.scheme else root.path


def sweep_configs(cfg: Config) -> list[Config]:
    """The config of every point, each validated (a bad point is refused before any runs)."""
    return [with_values(cfg, point) for point in sweep_points(cfg)]


def _create(out: str | Path, cfg: Config) -> tuple[Location, dict[str, Any]]:
    base = locate(out)
    try:
        if base.is_file():
            raise RunError(str(out), "is a file, not a directory (--out)")
        base.fs.create_dir(base.path, recursive=True)
        name, n = sweep_id_of(cfg), 1
        while not (base / name).make_dir_exclusive():
            n += 1
            name = f"{sweep_id_of(cfg)}-{n}"
    except OSError as err:
        raise RunError(str(out), f"cannot create the sweep directory: {err}") from None
    root = base / name
    record = {"sweep_id": name, "keys": list(cfg.sweep), "config_toml": to_toml(cfg), "points": []}
    return root, record


def _reopen(sweep_dir: str | Path, cfg: Config) -> tuple[Location, dict[str, Any]]:
    root = locate(sweep_dir)
    where = root / SWEEP_MANIFEST
    if not where.is_file():
        raise RunError(str(sweep_dir), f"not a sweep directory (no {SWEEP_MANIFEST})")
    try:
        record = json.loads(where.read_bytes())
        stored = from_toml(record["config_toml"])
        points = record["points"]
        assert isinstance(points, list)
    except (OSError, ValueError, KeyError, TypeError, AssertionError,
            ConfigError) as err:
        raise RunError(str(where), f"unusable sweep record, cannot resume: {err}") from None
    _check_same_config(stored, cfg)
    if stored.sweep != cfg.sweep:
        raise ConfigError("sweep", f"is {cfg.sweep!r} but the sweep being resumed swept "
                          f"{stored.sweep!r}")
    for entry in points:  # a point's status is its run's, whatever the record says
        if entry.get("run"):
            try:
                entry["status"] = read_manifest(str(root / entry["run"])).get("status")
            except RunError:
                entry["status"] = "missing"
    return root, record


def _note(root: Location, record: dict[str, Any], i: int, point: dict[str, Any], run_dir: str,
          status: str) -> dict[str, Any]:
    entry = {"point": point, "run": str(run_dir).rstrip("/").rsplit("/", 1)[-1], "status": status}
    while len(record["points"]) <= i:
        record["points"].append({})
    record["points"][i] = entry
    (root / SWEEP_MANIFEST).write_atomic(json.dumps(record, indent=2, default=str).encode())
    return entry


def _with_params(df: pd.DataFrame, point: dict[str, Any], index: int) -> pd.DataFrame:
    df = df.copy()
    df.insert(0, "point", index)
    for key, value in point.items():
        df[key] = [value] * len(df)
    return df
