"""A VMC's broadcast of a collaborative block to its VPP, through the simulated network.

A collaborative block is made outside consensus (the VMC signs it alone), but it still has to
reach the VPP's nodes: the VMC sends it to each of them over the VPP's links, through its
uplink and their downlinks, lost and resent like any copy (docs/architecture.md section 6); each receiver
checks the VMC's signature. What the ``messages`` table shows for the ``collaborative`` phase
is what this network carried -- copies, bytes, drops -- with the resends of lost copies counted
in the same row (they carry the same block).
"""

from __future__ import annotations

from dataclasses import dataclass

from mlts_ray.config import Network
from mlts_ray.ledger.block import Block
from mlts_ray.net.network import LinkModel, Nics, ms_to_us
from mlts_ray.net.node import Ready
from mlts_ray.net.sim import RETRANSMIT, ChainSim, PhaseStats

PHASE = "collaborative"


@dataclass(frozen=True, slots=True)
class CollaborativeMessage:
    block: bytes
    phase = PHASE

    def encode(self) -> bytes:
        return self.block


class _Go:
    """The round's start, handed to the VMC."""


class _Vmc:
    def __init__(self, peers: list[int], msg: CollaborativeMessage) -> None:
        self.peers, self.msg = peers, msg

    def step(self, event: object, now_us: int) -> Ready:
        if isinstance(event, _Go):
            return Ready(sends=[(p, self.msg) for p in self.peers])
        return Ready()


class _Peer:
    def step(self, event: object, now_us: int) -> Ready:
        # the receiver checks the VMC's signature on the block (charged on its CPU)
        return Ready(verifies=1) if isinstance(event, CollaborativeMessage) else Ready()


def broadcast(net: Network, seed: int, chain: str, names: tuple[str, ...], vmc: str,
              block: Block, rnd: int) -> PhaseStats:
    """Send ``block`` from ``vmc`` to every other node of ``names``; what the network carried."""
    msg = CollaborativeMessage(block.encode())
    sender = names.index(vmc)
    nodes = [_Vmc([i for i in range(len(names)) if i != sender], msg) if i == sender else _Peer()
             for i in range(len(names))]
    # a stream of its own: the consensus instance's draws of this chain and round stay apart
    sim = ChainSim(f"{chain}/{PHASE}", nodes, LinkModel.from_config(net, inter=False),
                   seed, ms_to_us(net.sign_cost_ms), ms_to_us(net.verify_cost_ms),
                   epoch=rnd, nics=Nics.for_names(net, names))
    sim.input(sender, _Go(), 0)
    sim.run_windows(max(1, sim.link.min_us))
    sent = sim.phases.get(PHASE, PhaseStats())
    resent = sim.phases.get(RETRANSMIT, PhaseStats())
    return PhaseStats(sent.count + resent.count, sent.bytes + resent.bytes,
                      sent.dropped + resent.dropped)
