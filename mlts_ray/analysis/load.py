"""Open a run directory: its manifest and its Parquet tables (no pickle anywhere)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from mlts_ray.errors import RunError
from mlts_ray.runtime.manifest import read_manifest
from mlts_ray.runtime.run_dir import load_table
from mlts_ray.runtime.storage import locate

__all__ = ["load_run", "load_sweep", "load_table", "read_manifest"]


def load_run(run_dir: str | Path, table: str = "consensus") -> pd.DataFrame:
    """A run's ``table`` with the run's main parameters as columns (one row per observation)."""
    manifest = read_manifest(run_dir)
    df = load_table(run_dir, table)
    cfg = manifest.get("config", {})
    params = {
        "experiment.seed": manifest.get("seed"),
        "consensus.algorithm": cfg.get("consensus", {}).get("algorithm"),
        "topology.vpps": cfg.get("topology", {}).get("vpps"),
        "topology.nodes_per_vpp": cfg.get("topology", {}).get("nodes_per_vpp"),
        "faults.byzantine_fraction": cfg.get("faults", {}).get("byzantine_fraction"),
    }
    for key, value in params.items():
        if key not in df.columns:
            df[key] = [value] * len(df)
    return df


def load_sweep(sweep_dir: str | Path, table: str = "consensus") -> pd.DataFrame:
    """Every point's ``table`` stacked, with ``point`` and every swept key as columns."""
    where = locate(sweep_dir)
    manifest = where / "sweep.json"
    if not manifest.is_file():
        raise RunError(str(sweep_dir), "not a sweep directory (no sweep.json)")
    record = json.loads(manifest.read_bytes())
    frames = []
    for i, entry in enumerate(record["points"]):
        if not entry.get("run"):  # a point an interrupted sweep has not reached
            continue
        df = load_run(str(where / entry["run"]), table)
        df.insert(0, "point", i)
        for key, value in entry["point"].items():
            df[key] = [value] * len(df)
        frames.append(df)
    if not frames:
        raise RunError(str(sweep_dir), "the sweep has no finished point")
    return pd.concat(frames, ignore_index=True)
