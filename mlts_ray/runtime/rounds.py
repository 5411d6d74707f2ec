"""The one round runner every runtime uses (docs/architecture.md section 7): the run's
population, the simulation it casts (its side chains wherever the runtime keeps them) and the
collector that turns its reports into rows. The local runtime, the Ray coordinator, the bench
and ``mlts verify --replay`` all run a round through it.

Timing is the runtime's, never the model's: ``timed_runner`` gives every outcome its
``wall_ms`` -- the wall time from the instance's start to its last window, in the process
that ran it (the same meaning on Ray: a host that runs a chain whole times it with this
runner, a chain driver from a spread chain's start to its last window) -- and
``TimedSides`` measures the side chains' services' part of a local round (``work_s``), which
the bench's scale-out model reads."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from mlts_ray.config import Config
from mlts_ray.ledger.crypto import Identity, KeyRing
from mlts_ray.mlts.consensus_round import Job, Outcome, Runner, run_job
from mlts_ray.mlts.report import Report
from mlts_ray.mlts.side_service import LocalSides
from mlts_ray.mlts.simulation import RunnerOf, Simulation, SidesOf, run_id_of
from mlts_ray.population import Population
from mlts_ray.results.collector import Collector, Row


class Rounds:
    """The run's population (who acts how), the simulation it casts and the collector that
    reads its reports. ``runner`` and ``sides`` say where the runtime runs consensus
    instances and keeps the side chains (default: here, timed)."""

    def __init__(self, cfg: Config, runner: RunnerOf | None = None,
                 sides: SidesOf | None = None) -> None:
        self.cfg = cfg
        self.run_id = run_id_of(cfg)
        self.population = Population(cfg)
        runner = runner or (lambda ids, keys: timed_runner(cfg, ids.__getitem__, keys))
        sides = sides or (lambda ids, keys, run: TimedSides(cfg, ids, keys, run, self.population))
        self.sim = Simulation(cfg, self.population, runner, sides)
        self.collector = Collector(cfg, self.population.labels)

    @classmethod
    def local(cls, cfg: Config) -> Rounds:
        """Everything in this process."""
        return cls(cfg)

    def rows(self, rnd: int) -> dict[str, list[Row]]:
        """Round ``rnd``'s tables as rows (every piece made in this process)."""
        return self.collector.tables(rnd, self.sim.run_round(rnd))

    def batches(self, rnd: int) -> dict[str, pa.RecordBatch]:
        """Round ``rnd``'s tables as one record batch each (every piece made here)."""
        return self.collector.round_batches(self.run_id, rnd, self.sim.run_round(rnd))

    def pieces(self, rnd: int) -> list[Any]:
        """Round ``rnd`` in pieces, in order: those made here as record batches, those made
        elsewhere as the runtime's stand-ins for them (``ray.sides.HostRows``)."""
        return [self.collector.batches(self.run_id, rnd, p) if isinstance(p, Report) else p
                for p in self.sim.run_round(rnd)]


def timed_runner(cfg: Config, identity_of: Callable[[str], Identity], keys: KeyRing) -> Runner:
    """Runs jobs one after the other in this process, each outcome with its ``wall_ms``."""

    def run(jobs: Sequence[Job]) -> list[Outcome]:
        outs = []
        for job in jobs:
            started = time.perf_counter()
            out = run_job(cfg, job, identity_of, keys)
            out.wall_ms = (time.perf_counter() - started) * 1000
            outs.append(out)
        return outs

    return run


class TimedSides(LocalSides):
    """The side chains in this process, ``work_s`` their services' seconds in the round (the
    part of a round a runtime that keeps them on hosts runs in parallel)."""

    def __init__(self, cfg: Config, identities: Mapping[str, Identity], keys: KeyRing,
                 runner: Runner, population: Population) -> None:
        super().__init__(cfg, identities, keys, runner, population)
        self.work_s = 0.0

    def open(self, rnd: int) -> Callable[[], Any]:
        self.work_s = 0.0
        return super().open(rnd)

    def _timed(self, call: Callable[..., Any], *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return call(*args)
        finally:
            self.work_s += time.perf_counter() - started
