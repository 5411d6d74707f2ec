"""``mlts sweep``: one run per point of the config's ``[sweep]`` (a cartesian product), under
``<out>/<sweep_id>/``, plus ``combined.parquet``: the points' ``consensus`` rows with every swept
key as a column. Every point is validated before the first one runs (``config``)."""

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

from mlts_ray.analysis.load import load_table
from mlts_ray.config import Config, sweep_points, with_values
from mlts_ray.errors import ConfigError
from mlts_ray.runtime.storage import locate

SWEEP_MANIFEST = "sweep.json"
COMBINED = "combined.parquet"
RunOne = Callable[[Config, str], Any]  # (point config, out) -> run directory


def sweep_id_of(cfg: Config) -> str:
    digest = hashlib.sha256(tomli_w.dumps(cfg.model_dump(mode="json")).encode()).hexdigest()[:10]
    return f"{cfg.experiment.name}-sweep-{digest}"


def run_sweep(
    cfg: Config, out: str | Path, run_one: RunOne,
    progress: Callable[[int, int], None] | None = None,
) -> str:
    """Run every point; returns the sweep directory. ``run_one`` is the runtime's run."""
    if not cfg.sweep:
        raise ConfigError("sweep", "is empty: nothing to sweep (use `mlts run` for one run)")
    points = sweep_points(cfg)
    configs = [with_values(cfg, point) for point in points]  # every point checked first
    base = locate(out)
    name, n = sweep_id_of(cfg), 1
    while (base / name).exists():
        n += 1
        name = f"{sweep_id_of(cfg)}-{n}"
    root = base / name
    root.fs.create_dir(root.path, recursive=True)
    record: dict[str, Any] = {"sweep_id": name, "keys": list(cfg.sweep), "points": []}
    frames = []
    for i, (point, point_cfg) in enumerate(zip(points, configs, strict=True)):
        run_dir = str(run_one(point_cfg, str(root)))
        record["points"].append({"point": point, "run": run_dir.rstrip("/").rsplit("/", 1)[-1]})
        root_manifest = root / SWEEP_MANIFEST
        root_manifest.write_atomic(json.dumps(record, indent=2, default=str).encode())
        frames.append(_with_params(load_table(run_dir, "consensus"), point, i))
        if progress:
            progress(i + 1, len(points))
    combined = pd.concat(frames, ignore_index=True)
    buffer = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(combined, preserve_index=False), buffer)
    (root / COMBINED).write_atomic(buffer.getvalue().to_pybytes())
    return str(root) if root.scheme else root.path


def _with_params(df: pd.DataFrame, point: dict[str, Any], index: int) -> pd.DataFrame:
    df = df.copy()
    df.insert(0, "point", index)
    for key, value in point.items():
        df[key] = [value] * len(df)
    return df
