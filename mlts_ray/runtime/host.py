"""A node host: some nodes' state machines for the current round of each chain it serves.

A plain class (the Ray runtime wraps it with ``ray.remote``); it derives keys and identities
itself from the run's seed, so no secret key ever crosses the wire.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from mlts_ray.consensus.instance import Instance
from mlts_ray.ledger.crypto import DerivedKeyRing, Identity
from mlts_ray.mlts.consensus_round import build_nodes
from mlts_ray.net.sim import Event, NodeHost, Result


class HostService:
    def __init__(self, seed: int, sign_us: int, verify_us: int, delay_us: int) -> None:
        self.seed, self.sign_us, self.verify_us, self.delay_us = seed, sign_us, verify_us, delay_us
        self.keys = DerivedKeyRing(seed)
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

    def process(self, chain: str, events: list[Event]) -> list[Result]:
        return self.hosts[chain].process(events)

    def end(self, chain: str) -> None:
        self.hosts.pop(chain, None)
