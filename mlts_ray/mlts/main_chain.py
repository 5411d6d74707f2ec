"""The main chain: kept by the V VMCs and the grid nodes (docs/architecture.md section 3).

Under DCE-PBFT its committee is ``ceil(main_committee_fraction * V)`` VMCs chosen by their
main-chain credit, and the grid nodes supervise; under PBFT every member is a replica. Its
block holds the round's cross-VPP trades and the ``anchor_root`` of the collaborative blocks
made since the previous main block. The grid's trading centre (``grid-0``) is the client; with
no grid nodes the first VMC is.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlts_ray.config import Config, main_committee_size
from mlts_ray.ledger.block import BlockKind
from mlts_ray.ledger.crypto import Identity, KeyRing
from mlts_ray.ledger.tx import MAIN_CHAIN
from mlts_ray.mlts.chain import Chain
from mlts_ray.mlts.topology import HONEST, byzantine_count, home_chain, side_chain
from mlts_ray.net.rng import stream


def grid_names(cfg: Config) -> tuple[str, ...]:
    return tuple(f"grid-{g}" for g in range(cfg.topology.grid_nodes))


def main_behaviours(cfg: Config, vmcs: tuple[str, ...], grid: tuple[str, ...]) -> dict[str, str]:
    """Faulty VMCs on the main chain when ``faults.where`` is ``main`` or ``both``; grid nodes
    are the trading centre's own and stay honest (a ``false-audit`` slot is a grid node)."""
    out = dict.fromkeys((*vmcs, *grid), HONEST)
    f = cfg.faults
    if f.where not in ("main", "both") or f.byzantine_fraction == 0:
        return out
    rng = stream(cfg.experiment.seed, "faults", MAIN_CHAIN)
    pool, auditors = list(vmcs), list(grid[1:])  # grid-0 is the client
    rng.shuffle(pool)
    rng.shuffle(auditors)
    for i in range(byzantine_count(f.byzantine_fraction, len(vmcs))):
        behaviour = f.behaviours[i % len(f.behaviours)]
        source = auditors if behaviour == "false-audit" else pool
        if source:
            out[source.pop()] = behaviour
    return out


class MainChain(Chain):
    kind = BlockKind.MAIN
    inter = True

    def __init__(
        self, cfg: Config, identities: Mapping[str, Identity], keys: KeyRing,
        sides: Mapping[str, Chain] | None = None,
    ) -> None:
        self.chain = MAIN_CHAIN
        self.sides = dict(sides or {})
        vmcs = tuple(f"{side_chain(v)}/vmc" for v in range(cfg.topology.vpps))
        grid = grid_names(cfg)
        self.names = tuple(sorted((*vmcs, *grid)))
        self.candidates = vmcs
        self.supervisors = grid
        self.client = grid[0] if grid else vmcs[0]
        algorithm = cfg.consensus.algorithm
        self.k = len(self.names) if algorithm == "pbft" else main_committee_size(cfg)
        super().__init__(cfg, identities, keys, main_behaviours(cfg, vmcs, grid))

    def chain_for(self, node: str) -> Chain:
        """A cross trade's party earns (or loses) credit on its own side chain."""
        return self.sides.get(home_chain(node, self.names), self)
