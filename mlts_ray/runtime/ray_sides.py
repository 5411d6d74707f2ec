"""Side chains that own their state on their hosts (docs/architecture.md section 7): each side
chain's service (``mlts.side_service``) -- chain store, credit book, its VPP's accounts, its
trading, consensus, record, settlement, credit and audits -- lives on the host actor that runs
the chain. The coordinator keeps the main chain, the cross-VPP book and anchoring, and per round
sends each service three calls; its shard answers the main chain's two-phase steps between.

Each service's rows leave its host as Arrow record batches in the object store: the coordinator
passes on their references without reading them, and the driver fetches them to write the
round (``tables.assemble``), while the next round runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import ray
from ray.exceptions import RayActorError

from mlts_ray.config import Config
from mlts_ray.errors import RunError
from mlts_ray.ledger.chain_accounts import Call
from mlts_ray.ledger.settlement import Balance
from mlts_ray.mlts.side_service import Closed, Ended, MainNews, Traded
from mlts_ray.mlts.topology import vpp_layout
from mlts_ray.runtime.placement import Placement


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
                    f"a node host actor died ({type(err).__name__}); every finished round "
                    "is in the run directory",
                ) from None
        raise


class RemoteShard:
    """A side chain's accounts on its host, as the coordinator's ``Ledgers`` asks them."""

    def __init__(self, name: str, host: Any, nodes: Iterable[str]) -> None:
        self.name, self.host, self.nodes = name, host, frozenset(nodes)
        self.round = 0  # the round the coordinator is in (RaySides.trade): a dead host's name

    def holds(self, node: str) -> bool:
        return node in self.nodes  # the VPP's accounts never change: no call needed

    def start(self, method: str, *args: Any) -> Any:
        return self.host.shard_call.remote(self.name, method, args)

    def balance(self, node: str) -> Balance:
        return get_named([self.start("balance", node)], [(self.name, self.round)])[0]

    def prepare(self, *args: Any) -> Any:
        return get_named([self.start("prepare", *args)], [(self.name, self.round)])[0]

    def commit(self, *args: Any) -> None:
        get_named([self.start("commit", *args)], [(self.name, self.round)])

    def abort(self, step: int) -> None:
        self.start("abort", step)  # runs before anything this caller sends the host later


def fan_out(calls: list[Call]) -> list[Any]:
    """Every remote shard asked at once, the ones here in turn; answers in call order."""
    started = [shard.start(method, *args) if isinstance(shard, RemoteShard) else None
               for shard, method, args in calls]
    remote = [ref for ref in started if ref is not None]
    got = iter(get_named(remote, [(s.name, s.round) for (s, _, _), ref in zip(calls, started,
                                                                        strict=True)
                                  if ref is not None]))
    return [next(got) if ref is not None else getattr(shard, method)(*args)
            for (shard, method, args), ref in zip(calls, started, strict=True)]


class RaySides:
    """Every side chain's service on the one host that runs the chain whole."""

    def __init__(self, cfg: Config, hosts: Sequence[Any], placement: Placement) -> None:
        self.host_of: dict[str, Any] = {}
        self.shards: dict[str, RemoteShard] = {}
        mine: dict[int, list[int]] = {}
        for v in range(cfg.topology.vpps):
            layout = vpp_layout(cfg, v)
            (h,) = placement.hosts_of(layout.chain)
            mine.setdefault(h, []).append(v)
            self.host_of[layout.chain] = hosts[h]
            self.shards[layout.chain] = RemoteShard(layout.chain, hosts[h], layout.nodes)
        get_named([hosts[h].own.remote(vs) for h, vs in mine.items()],
                  [(f"vpp-{vs[0]}", 0) for vs in mine.values()])
        self.fan_out = fan_out

    def trade(self, rnd: int) -> list[Traded]:
        for shard in self.shards.values():  # a host dying in a step is named with this round
            shard.round = rnd
        return self._each("side_trade", rnd)

    def close(self, rnd: int, news: Mapping[str, MainNews]) -> list[Closed]:
        return self._each("side_close", rnd, news)

    def end(self, rnd: int) -> list[Ended]:
        return self._each("side_end", rnd)

    def _each(self, method: str, rnd: int,
              news: Mapping[str, MainNews] | None = None) -> list[Any]:
        """One call per chain, all in flight together: each answers its reply (what the
        coordinator reads) and its rows (a reference it passes on unread)."""
        pairs = []
        for chain, host in self.host_of.items():
            args = (chain, rnd) if news is None else (chain, rnd, news.get(chain, MainNews()))
            pairs.append(getattr(host, method).options(num_returns=2).remote(*args))
        replies = get_named([reply for reply, _ in pairs], [(c, rnd) for c in self.host_of])
        return [dataclasses.replace(reply, rows=rows)
                for reply, (_, rows) in zip(replies, pairs, strict=True)]


def whole_chains(placement: Placement, chains: Iterable[str]) -> bool:
    """Whether every one of ``chains`` runs on one host (so its service can live there)."""
    return all(len(placement.hosts_of(c)) == 1 for c in chains)

