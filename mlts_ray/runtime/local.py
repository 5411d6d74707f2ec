"""The local runtime: the whole simulation in this process, no Ray (debugging, tests, laptops)."""

from __future__ import annotations

from pathlib import Path

from mlts_ray.config import Config
from mlts_ray.runtime.frozen import setup_frozen
from mlts_ray.runtime.driver import Progress, drive, open_sink
from mlts_ray.runtime.rounds import Rounds


def run_local(
    cfg: Config, out: str | Path, progress: Progress | None = None,
    resume: str | Path | None = None,
) -> Path | str:
    """Run every round of ``cfg``, streaming each round's tables to ``out/<run_id>``; with
    ``resume``, continue that interrupted run directory instead."""
    rounds = Rounds.local(cfg)  # before the directory: it checks the config
    with open_sink(cfg, out, resume, "local") as sink, setup_frozen():
        return drive(cfg, sink, rounds.batches, progress, runtime="local")
