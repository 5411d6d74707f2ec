"""A node host: some nodes' state machines for the current round of each chain it serves.

A plain class (the Ray runtime wraps it with ``ray.remote``); it derives keys and identities
itself from the run's seed, so no secret key ever crosses the wire.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping, Sequence

from mlts_ray.config import build_config
from mlts_ray.consensus.instance import Instance
from mlts_ray.ledger.crypto import DerivedKeyRing
from mlts_ray.mlts.consensus_round import Job, Outcome, build_nodes, run_job, to_wire
from mlts_ray.net.network import ms_to_us
from mlts_ray.net.sim import Event, NodeHost, Processed


class HostService:
    def __init__(self, cfg_toml: str) -> None:
        self.cfg = build_config(tomllib.loads(cfg_toml))
        net = self.cfg.network
        self.seed = self.cfg.experiment.seed
        self.sign_us, self.verify_us = ms_to_us(net.sign_cost_ms), ms_to_us(net.verify_cost_ms)
        self.delay_us = ms_to_us(self.cfg.faults.delay_ms)
        self.keys = DerivedKeyRing(self.seed)
        self.hosts: dict[str, NodeHost] = {}  # chain -> this round's nodes

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

