"""Where nodes run: pure placement policy, apart from any actor handle (docs/architecture.md section 7).

A *host* runs some nodes' state machines. With ``nodes_per_actor = n`` every chain gets
``ceil(N / n)`` hosts of its own (``n = 1``: each node is its own actor) and a side chain's hosts
form one group, to be packed on one Ray node like a VPP on its LAN. With ``auto`` there is one
host per CPU and whole chains are dealt to the least-loaded host, biggest chain first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class HostPlan:
    host: int
    group: str  # hosts of one group share a placement group (PACK)
    nodes: tuple[tuple[str, int], ...]  # (chain, node index)


@dataclass(frozen=True, slots=True)
class Placement:
    hosts: tuple[HostPlan, ...]
    host_of: dict[tuple[str, int], int]
    by_chain: dict[str, tuple[int, ...]] = field(default_factory=dict, init=False, compare=False)

    def __post_init__(self) -> None:
        # Asked for every chain every round: a scan of all 10,000 nodes each time cost 50 ms.
        by_chain: dict[str, set[int]] = {}
        for (chain, _), h in self.host_of.items():
            by_chain.setdefault(chain, set()).add(h)
        object.__setattr__(self, "by_chain", {c: tuple(sorted(hs)) for c, hs in by_chain.items()})

    def hosts_of(self, chain: str) -> list[int]:
        return list(self.by_chain.get(chain, ()))

    @property
    def groups(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for plan in self.hosts:
            out.setdefault(plan.group, []).append(plan.host)
        return out


def place(chains: Sequence[tuple[str, int]], nodes_per_actor: int | str, cpus: int) -> Placement:
    """``chains`` as ``(name, number of nodes)`` in a fixed order."""
    plans: list[HostPlan] = []
    if nodes_per_actor == "auto":
        count = max(1, min(cpus, len(chains)))
        load = [0] * count
        owned: list[list[tuple[str, int]]] = [[] for _ in range(count)]
        for chain, n in sorted(chains, key=lambda c: -c[1]):  # stable: ties keep their order
            h = min(range(count), key=lambda i: (load[i], i))
            load[h] += n
            owned[h] += [(chain, i) for i in range(n)]
        plans = [HostPlan(h, f"pack-{h}", tuple(owned[h])) for h in range(count)]
    else:
        size = int(nodes_per_actor)
        for chain, n in chains:
            for j in range(math.ceil(n / size)):
                nodes = tuple((chain, i) for i in range(j * size, min(n, (j + 1) * size)))
                plans.append(HostPlan(len(plans), chain, nodes))
    host_of = {node: plan.host for plan in plans for node in plan.nodes}
    return Placement(tuple(plans), host_of)


def place_run(chains: Sequence[tuple[str, int]], nodes_per_actor: int | str,
              cpus: int) -> Placement:
    """A run's hosts: ``chains`` are the side chains, then the main chain (last). When every
    side chain runs whole on one host its state lives there (``runtime.ray.sides``) and the
    main chain's instance runs in the coordinator, while the hosts run the side chains': the
    hosts get the side chains alone. Otherwise every chain is placed."""
    every = place(chains, nodes_per_actor, cpus)
    sides = chains[:-1]
    if whole_chains(every, [chain for chain, _ in sides]):
        return place(sides, nodes_per_actor, cpus)
    return every


def whole_chains(placement: Placement, chains: Iterable[str]) -> bool:
    """Whether every one of ``chains`` runs on one host (so its service can live there)."""
    return all(len(placement.hosts_of(c)) == 1 for c in chains)


def side_owners(placement: Placement, sides: Sequence[str],
                cpus: int) -> tuple[dict[str, int], int]:
    """Where each side chain's state lives (``runtime.ray.sides``), as an index into the
    hosts followed by the chain drivers: on its host when the chain runs whole there, else on
    a chain driver, the spread chains dealt in VPP order to ``min(cpus, spread)`` drivers (a
    driver drives its chains' windows together, so as many drivers as CPUs keep them all
    busy). Returns the owners and the number of drivers."""
    owner_of, spread = {}, []
    for chain in sides:
        hosts = placement.hosts_of(chain)
        if len(hosts) == 1:
            owner_of[chain] = hosts[0]
        else:
            spread.append(chain)
    drivers = min(max(1, cpus), len(spread))
    for k, chain in enumerate(spread):
        owner_of[chain] = len(placement.hosts) + k % drivers
    return owner_of, drivers
