"""Side chains that own their state on their hosts (docs/architecture.md section 7): each side
chain's service (``mlts.side_service``) -- chain store, credit book, its VPP's accounts, its
trading, consensus, record, settlement, credit and audits -- lives on the host actor that runs
the chain. The coordinator keeps the main chain, the cross-VPP book and anchoring, and per round
sends each host four calls, each for all its chains (open, record, close, end); between them,
its shards answer the main chain's two-phase steps. The coordinator matches the cross-VPP book
and runs the main chain's instance while the hosts run the side chains' consensus, which it
sends together with the open call (a host runs its calls in order).

Side chains spread over several hosts (``nodes_per_actor < nodes_per_vpp``) live on chain
drivers instead (``actors.ChainDriver``): the same service and calls, the consensus
driven window by window over the chain's hosts.

A host's rows of a call leave it as one ``runtime.tables.Bundle`` in the object store: the coordinator
passes on its reference without reading it, and the driver fetches it to write the round
(``results.schemas.assemble``), while the next round runs.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

import ray
from ray.exceptions import RayActorError

from mlts_ray.config import Config
from mlts_ray.errors import RunError
from mlts_ray.ledger.chain_accounts import Call, ShardOp
from mlts_ray.ledger.settlement import Balance
from mlts_ray.ledger.tx import Order
from mlts_ray.mlts.side_service import Closed, Ended, MainNews, Traded
from mlts_ray.mlts.topology import vpp_layout


class SideCall(StrEnum):
    """A round's calls to the side chains' owners (each one method of ``HostService``): the
    keys of the round's measurements (``RaySides.work_s``, ``wait_s``; ``scale_model``)."""

    OPEN = "sides_open"
    RECORD = "sides_record"
    CLOSE = "sides_close"
    END = "sides_end"


def get_named(refs: list, owners: Sequence[tuple[str, int]]) -> list:
    """``ray.get(refs)``; a dead host named by the first ``(chain, round)`` it failed."""
    try:
        return ray.get(refs)
    except RayActorError as err:
        for ref, (chain, rnd) in zip(refs, owners, strict=True):
            try:
                ray.get(ref)
            except RayActorError:
                raise RunError(
                    f"{chain} round {rnd}",
                    f"an actor running it died ({type(err).__name__}: a node host, or the "
                    "chain driver of a spread chain); every finished round is in the run "
                    "directory",
                ) from None
        raise


class RemoteShard:
    """A side chain's accounts on its owner (its host, or its chain driver), as the
    coordinator's ``Ledgers`` asks them."""

    def __init__(self, name: str, host: Any, nodes: Iterable[str], key: int = 0) -> None:
        self.name, self.host, self.nodes = name, host, frozenset(nodes)
        self.key = key  # the host's index: shards with one key are asked in one call
        self.round = 0  # the round the coordinator is in (RaySides.open): a dead host's name

    def holds(self, node: str) -> bool:
        return node in self.nodes  # the VPP's accounts never change: no call needed

    def balance(self, node: str) -> Balance:
        return fan_out([(self, ShardOp.BALANCE, (node,))])[0]

    def prepare(self, *args: Any) -> Any:
        return fan_out([(self, ShardOp.PREPARE, args)])[0]

    def commit(self, *args: Any) -> None:
        fan_out([(self, ShardOp.COMMIT, args)])

    def abort(self, step: int) -> None:
        # not awaited: it runs before anything this caller sends the host later
        self.host.shard_calls.remote([(self.name, ShardOp.ABORT, (step,))])


def fan_out(calls: list[Call]) -> list[Any]:
    """Every host holding a remote shard asked at once, in one call for all its shards; the
    shards here in turn. Answers in call order."""
    by_host: dict[int, list[int]] = {}
    for k, (shard, _, _) in enumerate(calls):
        if isinstance(shard, RemoteShard):
            by_host.setdefault(shard.key, []).append(k)
    groups = list(by_host.values())
    refs = [calls[ks[0]][0].host.shard_calls.remote([(calls[k][0].name, *calls[k][1:])
                                                     for k in ks]) for ks in groups]
    got = get_named(refs, [(calls[ks[0]][0].name, calls[ks[0]][0].round) for ks in groups])
    out: list[Any] = [None] * len(calls)
    for ks, answers in zip(groups, got, strict=True):
        for k, answer in zip(ks, answers, strict=True):
            out[k] = answer
    for k, (shard, op, args) in enumerate(calls):
        if not isinstance(shard, RemoteShard):
            out[k] = op.apply(shard, args)
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class HostRows:
    """One chain's rows of a call, held on its host: the reference to the call's rows (a
    ``tables.Bundle`` of all the host's chains) and the chain's place in it."""

    ref: ray.ObjectRef
    index: int


def fetch_pieces(pieces: Sequence[Any]) -> list[Any]:
    """``pieces`` with each ``HostRows`` fetched: every reference once, all in one call."""
    refs = list(dict.fromkeys(p.ref for p in pieces if isinstance(p, HostRows)))
    got = dict(zip(refs, ray.get(refs), strict=True))
    return [got[p.ref].piece(p.index) if isinstance(p, HostRows) else p for p in pieces]


class RaySides:
    """Every side chain's service on the actor that owns the chain: the host that runs it
    whole, or the chain driver that drives it over its hosts (``placement.side_owners``;
    ``owners``: the hosts, then the drivers). Each of a round's calls goes to every owner at
    once, one call for all of an owner's chains."""

    def __init__(self, cfg: Config, owners: Sequence[Any], owner_of: Mapping[str, int]) -> None:
        self.hosts = list(owners)
        self.chains_of: dict[int, list[str]] = {}  # owner -> its chains, in VPP order
        self.shards: dict[str, RemoteShard] = {}  # in VPP order
        vpps: dict[int, list[int]] = {}
        for v in range(cfg.topology.vpps):
            layout = vpp_layout(cfg.topology, v)
            h = owner_of[layout.chain]
            self.chains_of.setdefault(h, []).append(layout.chain)
            vpps.setdefault(h, []).append(v)
            self.shards[layout.chain] = RemoteShard(layout.chain, owners[h], layout.nodes, h)
        get_named([owners[h].own.remote(vs) for h, vs in vpps.items()],
                  [(chains[0], 0) for chains in self.chains_of.values()])
        self.fan_out = fan_out
        # this round, per call (open, record, close, end): each chain's seconds of work on
        # its host (wall, and the host thread's CPU time), and the coordinator's wall from
        # sending the call to every host (or from the previous call's answers, if it was sent
        # before them) to their answers -- what the bench's scale-out model is measured from
        # (runtime.scale_model)
        self.work_s: dict[str, dict[str, float]] = {}
        self.cpu_s: dict[str, dict[str, float]] = {}
        self.wait_s: dict[str, float] = {}
        self.overlap_s = self.overlap_cpu_s = 0.0
        self.answered = 0.0  # when the last call's answers were all in (wall)
        self.answered_cpu = 0.0  # and this thread's CPU time then
        self.round = 0  # the round the calls are for (open's)

    def open(self, rnd: int) -> Callable[[], list[tuple[Order, ...]]]:
        self.round = rnd
        for shard in self.shards.values():  # a host dying in a step is named with this round
            shard.round = rnd
        self.work_s, self.cpu_s, self.wait_s = {}, {}, {}
        self.overlap_s = self.overlap_cpu_s = 0.0
        answers = self._send(SideCall.OPEN, lambda owner, chains:
                             owner.sides_open.options(num_returns=2).remote(chains, rnd))
        return lambda: [o.forwarded for o in answers()]

    def record(self, rnd: int) -> Callable[[], list[Traded]]:
        """The side chains' consensus, sent to every host (each runs it after its open call,
        whether or not its answers are read yet); what waits for it notes how long the
        coordinator worked meanwhile (``overlap_s``, wall, and ``overlap_cpu_s``, this
        thread's CPU time: from the open call's answers, the cross-VPP book and the main
        chain's instance)."""
        answers = self._send(SideCall.RECORD, lambda owner, chains:
                             owner.sides_record.options(num_returns=2).remote(chains, rnd))
        sent, sent_cpu = time.perf_counter(), time.thread_time()

        def done() -> list[Traded]:
            self.overlap_s = time.perf_counter() - max(sent, self.answered)
            since = self.answered_cpu if self.answered > sent else sent_cpu
            self.overlap_cpu_s = time.thread_time() - since
            return answers()

        return done

    def close(self, rnd: int, news: Mapping[str, MainNews]) -> list[Closed]:
        return self._send(SideCall.CLOSE, lambda owner, chains: owner.sides_close.options(
            num_returns=2).remote(chains, rnd, [news.get(c, MainNews()) for c in chains]))()

    def end(self, rnd: int) -> list[Ended]:
        return self._send(SideCall.END, lambda owner, chains:
                          owner.sides_end.options(num_returns=2).remote(chains, rnd))()

    def _send(self, call: SideCall, send: Callable[[Any, list[str]], Any]
              ) -> Callable[[], list[Any]]:
        """``send(owner, its chains)`` to every owner, all in flight together, and what waits
        for them: each owner answers its chains' replies (what the coordinator reads) and
        their rows (a reference it passes on unread). A dead owner is named by its first
        chain."""
        started, rnd = time.perf_counter(), self.round
        pairs = [send(self.hosts[h], chains) for h, chains in self.chains_of.items()]

        def answers() -> list[Any]:
            since = max(started, self.answered)  # a call sent early waits from its turn
            replies = get_named([reply for reply, _ in pairs],
                                [(chains[0], rnd) for chains in self.chains_of.values()])
            self.answered, self.answered_cpu = time.perf_counter(), time.thread_time()
            self.wait_s[call] = self.answered - since
            by_chain = {}
            work_s, cpu_s = self.work_s.setdefault(call, {}), self.cpu_s.setdefault(call, {})
            for chains, (got, wall, cpu), (_, rows) in zip(self.chains_of.values(), replies,
                                                           pairs, strict=True):
                for k, (chain, reply, w, c) in enumerate(zip(chains, got, wall, cpu,
                                                             strict=True)):
                    by_chain[chain] = dataclasses.replace(reply, report=HostRows(rows, k))
                    work_s[chain], cpu_s[chain] = w, c
            return [by_chain[chain] for chain in self.shards]

        return answers
