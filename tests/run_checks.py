"""Checks on run directories shared by the runtime, cluster, resume and failure tests."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from mlts_ray.analysis.load import load_table
from mlts_ray.errors import RunError
from mlts_ray.results.schemas import TABLES


def assert_same_tables(a: Path, b: Path) -> None:
    """Every table of two runs is equal, exactly, but for the ``wall_*`` columns."""
    for name in TABLES:
        x, y = load_table(a, name), load_table(b, name)
        keep = [c for c in x.columns if not c.startswith("wall_")]
        pd.testing.assert_frame_equal(x[keep], y[keep], check_exact=True, obj=name)


def assert_dead_host_ended(err: RunError, chain: str, rounds: tuple[int, int],
                           root: Path) -> Path:
    """A run ended by a dead host of ``chain``: rounds are pipelined, so the round already
    running when the host died may still have finished, and the first round to fail is one
    of ``rounds``; the manifest is ``failed`` with every round before it stored, and those
    rounds (only) are readable. Returns the run directory."""
    named, _, failed = err.subject.partition(" round ")
    assert named == chain and failed in tuple(map(str, rounds)), str(err)
    assert "an actor running it died" in err.why
    (run,) = root.iterdir()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["rounds_done"] == int(failed), manifest
    for table in ("consensus", "trades"):  # the finished rounds, whole; nothing half-written
        assert sorted(load_table(run, table)["round"].unique()) == list(range(int(failed)))
    return run
