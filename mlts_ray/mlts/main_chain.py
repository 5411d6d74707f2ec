"""The main chain: kept by the V VMCs and the grid nodes (docs/architecture.md section 3).

Under DCE-PBFT its committee is ``ceil(main_committee_fraction * V)`` VMCs chosen by their
main-chain credit, and the grid nodes supervise; under PBFT every member is a replica. Its
block holds the round's cross-VPP trades and the ``anchor_root`` of the collaborative blocks
made since the previous main block. The grid's trading centre (``grid-0``) is the client; with
no grid nodes the first VMC is.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlts_ray.config import Config, Topology, main_committee_size
from mlts_ray.ledger.block import BlockKind
from mlts_ray.ledger.crypto import Identity, KeyRing
from mlts_ray.names import MAIN
from mlts_ray.mlts.chain import Chain
from mlts_ray.mlts.strategies import Strategies
from mlts_ray.mlts.topology import credit_chain
from mlts_ray.names import grid, side_chain, vmc


def grid_names(topology: Topology) -> tuple[str, ...]:
    return tuple(grid(g) for g in range(topology.grid_nodes))


def vmc_names(topology: Topology) -> tuple[str, ...]:
    """Every VPP's VMC, in VPP order: the main chain's committee candidates."""
    return tuple(vmc(side_chain(v)) for v in range(topology.vpps))


class MainChain(Chain):
    kind = BlockKind.MAIN
    inter = True

    def __init__(
        self, cfg: Config, identities: Mapping[str, Identity], keys: KeyRing,
        strategies: Mapping[str, Strategies], sides: Mapping[str, Chain] | None = None,
    ) -> None:
        self.chain = MAIN
        self.sides = dict(sides or {})
        vmcs, grids = vmc_names(cfg.topology), grid_names(cfg.topology)
        self.names = tuple(sorted((*vmcs, *grids)))
        self.candidates = vmcs
        self.supervisors = grids
        self.client = grids[0] if grids else vmcs[0]
        algorithm = cfg.consensus.algorithm
        self.k = len(self.names) if algorithm == "pbft" else main_committee_size(cfg)
        super().__init__(cfg, identities, keys, strategies)

    def chain_for(self, node: str) -> Chain:
        """A cross trade's party earns (or loses) credit on its own side chain."""
        return self.sides.get(credit_chain(node, self.names), self)
