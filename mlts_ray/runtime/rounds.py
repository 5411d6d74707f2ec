"""The one round runner every runtime uses (docs/architecture.md section 7): the simulation
(its side chains wherever the runtime keeps them) and the collector that turns its reports
into rows. The local runtime, the Ray coordinator, the bench and ``mlts verify --replay`` all
run a round through it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa

from mlts_ray.config import Config
from mlts_ray.ledger.crypto import Identity, KeyRing
from mlts_ray.mlts.consensus_round import Runner
from mlts_ray.mlts.report import Report
from mlts_ray.mlts.side_service import Sides
from mlts_ray.mlts.simulation import Simulation, run_id_of
from mlts_ray.population import Population
from mlts_ray.results.collector import Collector, Row


class Rounds:
    """The run's population (who acts how), the simulation it casts and the collector that
    reads its reports. ``runner``, ``clock`` and ``sides`` go to the ``Simulation``: where the
    runtime runs consensus instances and keeps the side chains."""

    def __init__(self, cfg: Config, runner: Runner | None = None,
                 clock: Callable[[], float] | None = None,
                 sides: Callable[[Mapping[str, Identity], KeyRing], Sides] | None = None) -> None:
        self.cfg = cfg
        self.run_id = run_id_of(cfg)
        self.population = Population(cfg)
        self.sim = Simulation(cfg, self.population, runner, clock, sides)
        self.collector = Collector(cfg, self.population.labels)

    @classmethod
    def local(cls, cfg: Config, clock: Callable[[], float] | None = None) -> Rounds:
        """Everything in this process; ``clock`` (seconds) times the side chains' work."""
        return cls(cfg, clock=clock)

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
