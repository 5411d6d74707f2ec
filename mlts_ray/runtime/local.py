"""The local runtime: the whole simulation in this process, no Ray (debugging, tests, laptops)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from mlts_ray.config import Config, to_toml
from mlts_ray.errors import MltsError, RunError
from mlts_ray.mlts.simulation import Simulation, run_id_of
from mlts_ray.runtime.sink import RunSink

Progress = Callable[[int, int], None]


def run_local(cfg: Config, out: str | Path, progress: Progress | None = None) -> Path | str:
    """Run every round of ``cfg``, streaming each round's tables to ``out/<run_id>``."""
    sink = RunSink.create(out, run_id_of(cfg), {
        "name": cfg.experiment.name, "seed": cfg.experiment.seed,
        "rounds": cfg.experiment.rounds, "runtime": "local",
        "config": cfg.model_dump(mode="json"), "config_toml": to_toml(cfg),
    })
    started = time.perf_counter()
    try:
        sim = Simulation(cfg, clock=time.perf_counter)
        for rnd in range(cfg.experiment.rounds):
            sink.write_round(rnd, sim.run_round(rnd))
            if progress:
                progress(rnd + 1, cfg.experiment.rounds)
    except MltsError as err:
        sink.finish("failed", error=str(err))
        raise
    except KeyboardInterrupt:
        sink.finish("interrupted")
        raise
    except Exception as err:  # a bug: keep the finished rounds readable, then say where
        sink.finish("failed", error=f"{type(err).__name__}: {err}")
        raise RunError(str(sink.root), f"internal error: {type(err).__name__}: {err}") from err
    sink.finish("complete", wall_s=round(time.perf_counter() - started, 3))
    return sink.root
