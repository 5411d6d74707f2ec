"""A node host: some nodes' state machines for the current round of each chain it serves, and
the services of the side chains it runs whole (``mlts.side_service``: each such chain's state
lives here, not in the coordinator).

A plain class (the Ray runtime wraps it with ``ray.remote``); it derives keys and identities
itself from the run's seed, so no secret key ever crosses the wire.
"""

from __future__ import annotations

import dataclasses
import time
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from mlts_ray.config import build_config
from mlts_ray.consensus.instance import Instance
from mlts_ray.ledger.crypto import DerivedKeyRing
from mlts_ray.mlts.consensus_round import Job, Outcome, build_nodes, run_job, to_wire
from mlts_ray.mlts.side_service import Closed, Ended, MainNews, Piece, SideService, Traded
from mlts_ray.mlts.simulation import run_id_of
from mlts_ray.mlts.topology import vpp_layout
from mlts_ray.net.network import ms_to_us
from mlts_ray.net.sim import Event, NodeHost, Processed
from mlts_ray.runtime.tables import to_batch

Batches = dict[str, pa.RecordBatch]


class HostService:
    def __init__(self, cfg_toml: str) -> None:
        self.cfg = build_config(tomllib.loads(cfg_toml))
        net = self.cfg.network
        self.seed = self.cfg.experiment.seed
        self.sign_us, self.verify_us = ms_to_us(net.sign_cost_ms), ms_to_us(net.verify_cost_ms)
        self.delay_us = ms_to_us(self.cfg.faults.delay_ms)
        self.keys = DerivedKeyRing(self.seed)
        self.hosts: dict[str, NodeHost] = {}  # chain -> this round's nodes
        self.sides: dict[str, SideService] = {}  # the side chains whose state lives here
        self.run_id = run_id_of(self.cfg)

    def begin(
        self, spec: Instance, indices: Sequence[int], behaviours: Mapping[str, str]
    ) -> None:
        """Build this host's nodes of a new instance (``spec`` arrives without keys)."""
        inst = dataclasses.replace(spec, keys=self.keys)
        nodes = build_nodes(inst, indices, self.keys.identity, behaviours, self.delay_us)
        self.hosts[inst.chain] = NodeHost(self.sign_us, self.verify_us, nodes)

    def run_whole(self, job: Job) -> Outcome:
        """A chain whose every node lives here runs its round -- trading, then the whole
        instance -- in one call: the same windows as across hosts, no round trip per window.
        The outcome goes back in its wire form (``consensus_round.to_wire``)."""
        inst = dataclasses.replace(job.inst, keys=self.keys)
        return to_wire(run_job(self.cfg, dataclasses.replace(job, inst=inst),
                               self.keys.identity, self.keys))

    def process(self, chain: str, events: list[Event], end_us: int) -> Processed:
        return self.hosts[chain].process(events, end_us)

    # --- side chains whose state lives here (runtime.ray_sides) -----------------------------

    def own(self, vpps: Sequence[int]) -> None:
        """Open the services of these VPPs' side chains, at their opening balances."""
        for v in vpps:
            layout = vpp_layout(self.cfg, v)
            identities = {n: self.keys.identity(n) for n in layout.nodes}
            self.sides[layout.chain] = SideService(self.cfg, v, identities, self.keys)

    def side_trade(self, chain: str, rnd: int) -> tuple[Traded, Batches]:
        """The chain's round up to the main block: trading and consensus run here."""
        service = self.sides[chain]
        job = service.start(rnd)
        started = time.perf_counter()
        out = run_job(self.cfg, job, self.keys.identity, self.keys)
        out.wall_ms = (time.perf_counter() - started) * 1000
        return self._split(rnd, service.recorded(rnd, out))

    def side_close(self, chain: str, rnd: int, news: MainNews) -> tuple[Closed, Batches]:
        return self._split(rnd, self.sides[chain].close(rnd, news))

    def side_end(self, chain: str, rnd: int) -> tuple[Ended, Batches]:
        return self._split(rnd, self.sides[chain].end(rnd))

    def shard_call(self, chain: str, method: str, args: tuple) -> Any:
        """The chain's accounts answer a step of the main chain's (``ChainAccounts``)."""
        return getattr(self.sides[chain].shard, method)(*args)

    def _split(self, rnd: int, reply: Any) -> tuple[Any, Batches]:
        """The reply without its rows, and the rows as record batches (two return values:
        the coordinator reads the first and passes the second on by reference)."""
        rows: Piece = reply.rows
        return (dataclasses.replace(reply, rows={}),
                {name: to_batch(name, self.run_id, rnd, r) for name, r in rows.items()})
