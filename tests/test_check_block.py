"""What honest members refuse inside a proposal, and what they hold against its sender."""

from __future__ import annotations

import dataclasses
import pickle

from mlts_ray.config import build_config
from mlts_ray.consensus.instance import Evidence
from mlts_ray.consensus.messages import Vote
from mlts_ray.consensus.checks import check_block, know_trades
from mlts_ray.consensus.pbft import Replica
from mlts_ray.ledger import Block, BlockKind, Identity, KeyRing, SigKind, Trade
from mlts_ray.ledger.tx import SignedTrade
from mlts_ray.ledger.block import ZERO_HASH
from mlts_ray.mlts.consensus_round import build_instance

NAMES = tuple(f"vpp-0/n-{i:03d}" for i in range(4))
IDS = {n: Identity.derive(1, n) for n in NAMES}


def _inst(rnd: int):
    cfg = build_config({})
    return build_instance(cfg, "vpp-0", 0, rnd, BlockKind.SIDE, ZERO_HASH, ZERO_HASH, NAMES,
                          NAMES, NAMES[0], KeyRing.of(IDS.values()), certify=False)


def _trade(rnd: int) -> bytes:
    return Trade("vpp-0", rnd, NAMES[1], NAMES[2], "vpp-0", "vpp-0", 100, 10, "b", "s") \
        .sign(IDS[NAMES[1]], IDS[NAMES[2]]).encode()


def _block(rnd: int, txs) -> Block:
    return Block.create(IDS[NAMES[0]], chain="vpp-0", height=0, kind=BlockKind.SIDE, round=rnd,
                        prev_hash=ZERO_HASH, txs=txs)


def test_a_trade_from_another_round_makes_the_block_invalid():
    ok = _block(1, [_trade(1)])
    assert check_block(_inst(1), ok.encode(), ok.hash)[0] is None
    replayed = _block(1, [_trade(0)])  # an old trade re-proposed: a replay
    problem, _, _ = check_block(_inst(1), replayed.encode(), replayed.hash)
    assert problem and "another chain or round" in problem


def test_consensus_votes_from_a_non_member_are_evidence():
    inst = _inst(0)
    replica = Replica(IDS[NAMES[1]], 1, inst)
    outsider = Identity.derive(1, "vpp-0/n-099")
    vote = Vote(SigKind.PREPARE, "vpp-0", 0, 0, bytes(32), outsider.name).signed(outsider)
    ready = replica.step(vote, 0)
    assert ready.outputs == [Evidence("non-member", outsider.name, "prepare")]
    assert not ready.sends and ready.verifies == 0  # refused before any work


def test_a_copy_of_an_instance_starts_with_empty_caches_of_its_own():
    # The Ray runtime ships `replace(inst, keys=...)` to hosts and back: a shared cache would
    # travel with every outcome (it once made each side chain's outcome 270 KB, not 80 KB).
    inst = _inst(1)
    ok = _block(1, [_trade(1)])
    assert check_block(inst, ok.encode(), ok.hash)[0] is None
    assert inst.block_checks and inst.decoded
    copy = dataclasses.replace(inst, keys=KeyRing())
    assert not copy.block_checks and not copy.decoded
    assert copy.block_checks is not inst.block_checks and copy.decoded is not inst.decoded
    assert len(pickle.dumps(copy)) < len(pickle.dumps(inst))


def test_trades_a_chain_hands_its_instance_are_known_by_their_bytes_and_still_checked():
    """``know_trades``: the primary packs the trades the chain hands it without decoding the
    bytes it was just given (they decode to an equal trade), and a forged contract among them
    is still refused: knowing a trade spares its decoding, never its signatures' check."""
    inst = _inst(1)
    good = SignedTrade.decode(_trade(1))
    forged = dataclasses.replace(good, seller_sig=bytes(64))
    raws = know_trades(inst, [good, forged])
    assert raws == (good.encode(), forged.encode())
    for raw, trade in zip(raws, (good, forged), strict=True):
        assert inst.decoded[("trade", raw)] is trade and SignedTrade.decode(raw) == trade
    ok, bad = _block(1, [raws[0]]), _block(1, [raws[1]])
    assert check_block(inst, ok.encode(), ok.hash)[0] is None
    problem, verified, _ = check_block(inst, bad.encode(), bad.hash)
    assert problem == f"trade {forged.tx_id} is not a valid contract" and verified == 3
