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
from mlts_ray.ledger.crypto import DerivedKeyRing, Identity
from mlts_ray.mlts.consensus_round import (
    Outcome,
    build_nodes,
    new_sim,
    read_outcome,
    start,
    window_width,
)
from mlts_ray.net.network import ms_to_us
from mlts_ray.net.sim import Event, NodeHost, Result


class HostService:
    def __init__(self, cfg_toml: str) -> None:
        self.cfg = build_config(tomllib.loads(cfg_toml))
        net = self.cfg.network
        self.seed = self.cfg.experiment.seed
        self.sign_us, self.verify_us = ms_to_us(net.sign_cost_ms), ms_to_us(net.verify_cost_ms)
        self.delay_us = ms_to_us(self.cfg.faults.delay_ms)
        self.keys = DerivedKeyRing(self.seed)
        self.identities: dict[str, Identity] = {}
        self.hosts: dict[str, NodeHost] = {}  # chain -> this round's nodes

    def _identity(self, name: str) -> Identity:
        me = self.identities.get(name)
        if me is None:
            me = self.identities[name] = Identity.derive(self.seed, name)
        return me

    def begin(
        self, spec: Instance, indices: Sequence[int], behaviours: Mapping[str, str]
    ) -> None:
        """Build this host's nodes of a new instance (``spec`` arrives without keys)."""
        inst = dataclasses.replace(spec, keys=self.keys)
        nodes = build_nodes(inst, indices, self._identity, behaviours, self.delay_us)
        self.hosts[inst.chain] = NodeHost(self.sign_us, self.verify_us, nodes)

    def run_whole(
        self, spec: Instance, behaviours: Mapping[str, str], trades: Sequence[bytes], inter: bool
    ) -> Outcome:
        """A chain whose every node lives here runs its whole instance in one call: the same
        windows as across hosts, without a round trip per window."""
        inst = dataclasses.replace(spec, keys=self.keys)
        n = len(inst.names)
        nodes = build_nodes(inst, range(n), self._identity, behaviours, self.delay_us)
        sim = new_sim(self.cfg, inst, inter, [nodes[i] for i in range(n)])
        start(sim, inst, trades)
        sim.run_windows(window_width(sim, inst))
        out = read_outcome(inst, sim, behaviours)
        out.inst = spec  # the caller's own instance goes back in (no caches shipped)
        return out

    def process(self, chain: str, events: list[Event]) -> list[Result]:
        return self.hosts[chain].process(events)

    def end(self, chain: str) -> None:
        self.hosts.pop(chain, None)
