"""A node host: some nodes' state machines for the current round of each chain it serves, and
the services of the side chains it runs whole (``mlts.side_service``: each such chain's state
lives here, not in the coordinator).

A plain class (the Ray runtime wraps it with ``ray.remote``); it derives keys and identities
itself from the run's seed, so no secret key ever crosses the wire.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from mlts_ray.config import from_toml
from mlts_ray.consensus.instance import Instance
from mlts_ray.ledger.chain_accounts import ShardOp
from mlts_ray.ledger.crypto import DerivedKeyRing
from mlts_ray.mlts.consensus_round import Job, Outcome, build_nodes, to_wire
from mlts_ray.mlts.side_service import MainNews, Opened, SideService, Traded, run_consensus
from mlts_ray.mlts.simulation import run_id_of
from mlts_ray.mlts.topology import vpp_layout
from mlts_ray.net.network import ms_to_us
from mlts_ray.net.sim import Event, NodeHost, Processed
from mlts_ray.population import Population
from mlts_ray.results.collector import Collector
from mlts_ray.runtime.rounds import timed_runner
from mlts_ray.runtime.tables import Bundle, bundle

# (each chain's reply without its rows, its seconds of work: wall, then this thread's CPU),
# then all the chains' rows
Answer = tuple[tuple[list[Any], list[float], list[float]], Bundle]


class HostService:
    def __init__(self, cfg_toml: str) -> None:
        self.cfg = from_toml(cfg_toml)
        net = self.cfg.network
        self.seed = self.cfg.experiment.seed
        self.sign_us, self.verify_us = ms_to_us(net.sign_cost_ms), ms_to_us(net.verify_cost_ms)
        self.delay_us = ms_to_us(self.cfg.faults.delay_ms)
        self.keys = DerivedKeyRing(self.seed)
        self.hosts: dict[str, NodeHost] = {}  # chain -> this round's nodes
        self.sides: dict[str, SideService] = {}  # the side chains whose state lives here
        self.run_id = run_id_of(self.cfg)
        self.runner = timed_runner(self.cfg, self.keys.identity, self.keys)
        # who acts how (for its side chains' services) and the rows of their reports
        self.population = Population(self.cfg)
        self.collector = Collector(self.cfg, self.population.labels)

    def begin(
        self, spec: Instance, indices: Sequence[int], wrappers: Mapping[str, type]
    ) -> None:
        """Build this host's nodes of a new instance (``spec`` arrives without keys;
        ``wrappers``: the instance's faulty nodes', colluders included)."""
        inst = dataclasses.replace(spec, keys=self.keys)
        nodes = build_nodes(inst, indices, self.keys.identity, wrappers, self.delay_us)
        self.hosts[inst.chain] = NodeHost(self.sign_us, self.verify_us, nodes)

    def run_whole(self, job: Job) -> Outcome:
        """A chain whose every node lives here runs its round -- trading, then the whole
        instance -- in one call: the same windows as across hosts, no round trip per window.
        The outcome goes back in its wire form (``consensus_round.to_wire``)."""
        (out,) = self.runner([dataclasses.replace(job, inst=dataclasses.replace(
            job.inst, keys=self.keys))])
        return to_wire(out)

    def process(self, chain: str, events: list[Event], end_us: int) -> Processed:
        return self.hosts[chain].process(events, end_us)

    # --- side chains whose state lives here (runtime.ray.sides) -----------------------------

    def own(self, vpps: Sequence[int]) -> None:
        """Open the services of these VPPs' side chains, at their opening balances."""
        for v in vpps:
            layout = vpp_layout(self.cfg.topology, v)
            identities = {n: self.keys.identity(n) for n in layout.nodes}
            self.sides[layout.chain] = SideService(self.cfg, v, identities, self.keys,
                                                   self.population.strategies(layout.chain))

    def sides_open(self, chains: Sequence[str], rnd: int) -> Answer:
        """These chains' periods open, their traders post and their books match, in turn:
        each answers the orders it forwards (no rows yet). Like every call below, one for all
        the host's chains (``runtime.ray.sides``)."""
        return self._each(rnd, [partial(self._opened, self.sides[c], rnd) for c in chains])

    def sides_record(self, chains: Sequence[str], rnd: int) -> Answer:
        """These chains' fills become contracts and their consensus jobs run and are
        recorded, in turn (their rows up to the main block)."""
        return self._each(rnd, [partial(self._recorded, self.sides[c], rnd) for c in chains])

    def sides_close(self, chains: Sequence[str], rnd: int, news: Sequence[MainNews]) -> Answer:
        return self._each(rnd, [partial(self.sides[c].close, rnd, n)
                                for c, n in zip(chains, news, strict=True)])

    def sides_end(self, chains: Sequence[str], rnd: int) -> Answer:
        return self._each(rnd, [partial(self.sides[c].end, rnd) for c in chains])

    def shard_calls(self, calls: Sequence[tuple[str, ShardOp, tuple]]) -> list[Any]:
        """Chains' accounts answer a step of the main chain's (``ChainAccounts``), in order."""
        return [op.apply(self.sides[chain].shard, args) for chain, op, args in calls]

    def _opened(self, service: SideService, rnd: int) -> Opened:
        return Opened(service.chain, service.open(rnd))

    def _recorded(self, service: SideService, rnd: int) -> Traded:
        (out,) = run_consensus([service], self.runner)
        return service.recorded(rnd, out)

    def _each(self, rnd: int, calls: list[Callable[[], Any]]) -> Answer:
        """Each chain's call in turn: its reply without rows and the seconds its work took
        here, as wall and as this thread's CPU time (its share of turning the rows into
        batches included: what a host spends on the chain), then all the chains' rows as one
        ``Bundle`` (the second return value: the coordinator reads the first, passes this one
        on). The CPU time is the chain's work on a CPU of its own: on a machine with fewer
        CPUs than busy processes, the wall also counts the time others held the CPU."""
        replies, wall, cpu, pieces = [], [], [], []
        for call in calls:
            started, ran = time.perf_counter(), time.thread_time()
            reply = call()
            pieces.append(self.collector.rows(rnd, reply.report))
            replies.append(dataclasses.replace(reply, report=None))
            wall.append(time.perf_counter() - started)
            cpu.append(time.thread_time() - ran)
        started, ran = time.perf_counter(), time.thread_time()
        rows = bundle(self.run_id, rnd, pieces)
        spent, spent_cpu = time.perf_counter() - started, time.thread_time() - ran
        counts = [sum(map(len, p.values())) for p in pieces]
        total = sum(counts) or 1
        return (replies, [w + spent * n / total for w, n in zip(wall, counts, strict=True)],
                [c + spent_cpu * n / total for c, n in zip(cpu, counts, strict=True)]), rows
