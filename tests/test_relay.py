"""Collaborative blocks travel as real messages (issue 14, item 5): the VMC's broadcast goes
through the VPP's NICs and links, so its count, bytes and drops are what the network did."""

from __future__ import annotations

from mlts_ray.config import build_config
from mlts_ray.ledger.block import Block, BlockKind
from mlts_ray.ledger.crypto import DerivedKeyRing
from mlts_ray.mlts.relay import broadcast
from mlts_ray.mlts.topology import vpp_layout

CFG = build_config({"topology": {"vpps": 1, "nodes_per_vpp": 30}})
LAYOUT = vpp_layout(CFG.topology, 0)
BLOCK = Block.create(DerivedKeyRing(1).identity(LAYOUT.vmc), chain="vpp-0", height=3,
                     kind=BlockKind.COLLABORATIVE, round=2, prev_hash=bytes(32),
                     txs=[bytes(32)] * 5, index=0, type=1)


def _carried(overrides: list[str]):
    cfg = build_config(CFG.model_dump(mode="json"), overrides)
    return broadcast(cfg.network, cfg.experiment.seed, "vpp-0", LAYOUT.nodes, LAYOUT.vmc, BLOCK, 2)


def test_a_lossless_broadcast_is_one_copy_per_peer():
    carried = _carried([])
    assert (carried.count, carried.dropped) == (29, 0)
    assert carried.bytes == 29 * len(BLOCK.encode())


def test_lost_copies_are_resent_and_counted_with_reliable_transport():
    carried = _carried(["network.loss=0.3"])
    assert carried.dropped > 0
    assert carried.count == 29 + carried.dropped  # each loss resent once, every peer reached


def test_datagrams_lose_copies_for_good():
    carried = _carried(["network.loss=0.3", "network.transport=datagram"])
    assert carried.count == 29 and 0 < carried.dropped < 29
