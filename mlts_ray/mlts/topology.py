"""Names and roles of every node (docs/architecture.md section 3).

Side chain ``vpp-v`` has ``N_v`` nodes: its VMC ``vpp-v/vmc`` and resources ``vpp-v/n-001`` ...;
the last ``supervisors_per_vpp`` resources are the VPP's supervisors. Names are zero-padded so
they sort. Who among them is faulty is the population's to draw (``mlts_ray.population``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from fractions import Fraction

from mlts_ray.config import Topology
from mlts_ray.names import MAIN, resource, side_chain, vmc, vpp_of


def credit_chain(node: str, main_nodes: Collection[str]) -> str:
    """The chain whose credit a node's trading counts in: the main chain for its own nodes
    (VMCs, grid), else the node's side chain (``vpp-3/n-007`` -> ``vpp-3``). Not the shard
    that holds its account (``names.home_of``: a VMC's account is in its VPP's shard)."""
    return MAIN if node in main_nodes else vpp_of(node) or MAIN


@dataclass(frozen=True, slots=True)
class VppLayout:
    chain: str
    vmc: str
    resources: tuple[str, ...]  # every node but the VMC
    supervisors: tuple[str, ...]

    @property
    def nodes(self) -> tuple[str, ...]:
        """All nodes, sorted: the node index used by the network and consensus."""
        return tuple(sorted((self.vmc, *self.resources)))

    @property
    def candidates(self) -> tuple[str, ...]:
        """Who may sit on the side committee: everyone but the supervisors."""
        return tuple(n for n in self.nodes if n not in self.supervisors)

    @property
    def traders(self) -> tuple[str, ...]:
        return tuple(n for n in self.resources if n not in self.supervisors)


def vpp_layout(topology: Topology, v: int) -> VppLayout:
    chain = side_chain(v)
    n, s = topology.nodes_per_vpp, topology.supervisors_per_vpp
    resources = tuple(resource(chain, i) for i in range(1, n))
    return VppLayout(chain, vmc(chain), resources, resources[len(resources) - s :] if s else ())


def chain_sizes(topology: Topology) -> list[tuple[str, int]]:
    """Every chain and its number of nodes, side chains in VPP order, then the main chain
    (each VPP's VMC and the grid's nodes)."""
    sides = [(side_chain(v), topology.nodes_per_vpp) for v in range(topology.vpps)]
    return [*sides, (MAIN, topology.vpps + topology.grid_nodes)]


def byzantine_count(fraction: float, pool: int) -> int:
    """``round(fraction * pool)``, halves up, in exact arithmetic."""
    return int(Fraction(repr(fraction)) * pool + Fraction(1, 2))
