"""Canonical encodings, signed orders/trades, blocks and the chain store."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger_strategies import identity, keyring, make_trade, orders, trades
from mlts_ray.errors import ChainError, EncodingError, LedgerError
from mlts_ray.ledger import (
    Block,
    BlockHeader,
    BlockKind,
    ChainStore,
    Order,
    Side,
    SignedOrder,
    SignedTrade,
    Trade,
    anchor_leaf,
    merkle_root,
)
from mlts_ray.ledger.block import ZERO_HASH
from mlts_ray.ledger.crypto import signing_root


@given(orders())
def test_order_encoding_is_canonical_and_signed(order):
    data = order.encode()
    assert Order.decode(data) == order and Order.decode(data).encode() == data
    signed = order.sign(identity(order.node))
    assert SignedOrder.decode(signed.encode()) == signed
    assert signed.verify(keyring())
    forged = SignedOrder(Order(order.node, order.vpp, order.round, order.seq, order.side,
                               order.wh + 1, order.price, order.time_us), signed.signature)
    assert not forged.verify(keyring())


@given(trades())
def test_trade_encoding_is_canonical_and_needs_both_signatures(trade):
    data = trade.encode()
    assert Trade.decode(data) == trade and Trade.decode(data).encode() == data
    st_ = trade.sign(identity(trade.buyer), identity(trade.seller))
    assert SignedTrade.decode(st_.encode()) == st_
    assert st_.verify(keyring())
    swapped = SignedTrade(trade, st_.seller_sig, st_.buyer_sig)
    assert swapped.bad_signer(keyring()) == trade.buyer
    half = SignedTrade(trade, st_.buyer_sig, bytes(64))
    assert half.bad_signer(keyring()) == trade.seller
    assert len(trade.tx_id) == 32 and trade.cross == (trade.chain == "main")


@given(trades())
def test_a_trades_memoised_signing_root_is_its_signing_datas_and_a_changed_trade_has_its_own(
        trade):
    """Both parties sign ``Trade.root`` and every check verifies against it: the root is the
    domain-separated one of the trade's bytes, and a trade with any field changed (a fresh
    object, no memo carried over) no longer verifies under the old signatures."""
    signed = trade.sign(identity(trade.buyer), identity(trade.seller))
    assert trade.root == signing_root(*trade.signing_data())
    assert identity(trade.buyer).sign_root(*trade.signing_data()) == signed.buyer_sig
    moved = dataclasses.replace(trade, wh=trade.wh + 1)
    assert moved.root == signing_root(*moved.signing_data()) != trade.root
    assert SignedTrade(moved, signed.buyer_sig, signed.seller_sig).bad_signer(keyring()) \
        == trade.buyer
    assert SignedTrade.decode(signed.encode()).trade.root == trade.root


@given(trades(), st.data())
def test_decoders_reject_truncation_trailing_bytes_and_other_tags(trade, data):
    raw = trade.sign(identity(trade.buyer), identity(trade.seller)).encode()
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(EncodingError):
        SignedTrade.decode(raw[:cut])
    with pytest.raises(EncodingError, match="trailing"):
        SignedTrade.decode(raw + b"\x00")
    with pytest.raises(EncodingError, match="type tag"):
        Trade.decode(raw)


def _fresh(obj):
    """An equal object built field by field: no memo of the bytes it was decoded from."""
    return dataclasses.replace(obj)


@given(trades(), st.data())
def test_any_bytes_a_decoder_accepts_are_exactly_what_encode_builds(trade, data):
    # Decoded trades keep their input bytes as their encoding: sound only if the encoding is
    # canonical, i.e. no two accepted byte strings decode to the same trade.
    raw = bytearray(trade.sign(identity(trade.buyer), identity(trade.seller)).encode())
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        decoded = SignedTrade.decode(bytes(raw))
    except (EncodingError, LedgerError):
        return
    fresh = SignedTrade(_fresh(decoded.trade), decoded.buyer_sig, decoded.seller_sig)
    assert fresh == decoded and fresh.encode() == bytes(raw) == decoded.encode()
    assert _fresh(decoded.trade).encode() == decoded.trade.encode()
    assert _fresh(decoded.trade).tx_id == decoded.tx_id


@given(trades())
def test_a_block_uses_a_known_trade_only_for_its_exact_bytes(trade):
    signed = trade.sign(identity(trade.buyer), identity(trade.seller))
    other = SignedTrade(trade, signed.buyer_sig, bytes(64))  # same trade, other bytes
    block = Block.create(identity(trade.buyer), chain=trade.chain, height=0,
                         kind=BlockKind.MAIN if trade.cross else BlockKind.SIDE,
                         round=trade.round, prev_hash=ZERO_HASH, txs=[signed.encode()])
    assert block.signed_trades(known=[signed])[0] is signed
    got = block.signed_trades(known=[other])[0]
    assert got is not other and got == signed == block.signed_trades()[0]


def test_amount_rounds_half_up_in_integer_cents():
    assert make_trade("vpp-0/n-000", "vpp-0/n-001", 1500, 21).amount_cents == 32  # 31.5 -> 32
    assert make_trade("vpp-0/n-000", "vpp-0/n-001", 1499, 21).amount_cents == 31  # 31.479


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"wh": 0}, "wh must be"),
        ({"price": -1}, "price must be"),
        ({"wh": 1.5}, "wh must be"),
        ({"seller": "vpp-0/n-000"}, "same node"),
        ({"chain": "vpp-1"}, "belongs on chain 'vpp-0'"),
    ],
)
def test_invalid_trades_are_refused_by_name(kwargs, fragment):
    base = dict(chain="vpp-0", round=0, buyer="vpp-0/n-000", seller="vpp-0/n-001",
                buyer_vpp="vpp-0", seller_vpp="vpp-0", wh=10, price=5, buy_order="b", sell_order="s")
    with pytest.raises(LedgerError, match=fragment) as err:
        Trade(**{**base, **kwargs})
    assert err.value.subject.startswith("trade ")


def test_order_side_must_be_a_side():
    with pytest.raises(LedgerError, match="side"):
        Order("n", "vpp-0", 0, 0, 1, 10, 5, 0)  # type: ignore[arg-type]
    assert Order("n", "vpp-0", 0, 0, Side.SELL, 10, 5, 0).order_id == "n/r0/o0"


def _side_block(store: ChainStore, proposer: str, n_trades: int, rnd: int) -> Block:
    txs = [
        make_trade("vpp-0/n-000", "vpp-0/n-001", 10 + i, 5, rnd, str(i))
        .sign(identity("vpp-0/n-000"), identity("vpp-0/n-001")).encode()
        for i in range(n_trades)
    ]
    return Block.create(identity(proposer), chain=store.chain, height=store.next_height,
                        kind=BlockKind.SIDE, round=rnd, prev_hash=store.tip_hash, txs=txs)


def test_chain_store_appends_links_and_answers_by_height_and_hash():
    store = ChainStore("vpp-0", keyring())
    hashes = [store.append(_side_block(store, "vpp-0/n-002", r % 3, r)) for r in range(5)]
    assert store.height == 4 and len(store) == 5
    for h, block_hash in enumerate(hashes):
        assert store.by_height(h).hash == block_hash
        assert store.by_hash(block_hash).header.height == h
        assert h == 0 or store.by_height(h).header.prev_hash == hashes[h - 1]
    assert [len(b.signed_trades()) for b in store] == [0, 1, 2, 0, 1]
    with pytest.raises(ChainError, match="vpp-0@9"):
        store.by_height(9)


def _replace_header(block: Block, **changes) -> Block:
    fields = {f: getattr(block.header, f) for f in BlockHeader.__slots__}
    return Block(BlockHeader(**{**fields, **changes}), block.signature, block.txs)


@pytest.mark.parametrize(
    "tamper, fragment",
    [
        (lambda b: _replace_header(b, height=5), "height 5 where 1"),
        (lambda b: _replace_header(b, prev_hash=ZERO_HASH), "prev_hash"),
        (lambda b: _replace_header(b, chain="vpp-1"), "belongs to chain"),
        (lambda b: _replace_header(b, merkle_root=ZERO_HASH), "merkle_root"),
        (lambda b: _replace_header(b, n_txs=3), "header says 3"),
        (lambda b: Block(b.header, b.signature, b.txs[:1]), "header says 2"),
        (lambda b: Block(b.header, b.signature, b.txs[::-1]), "merkle_root"),
        (lambda b: Block(b.header, bytes(64), b.txs), "bad block signature"),
        (lambda b: _replace_header(b, proposer="vpp-0/n-003"), "bad block signature"),
        (lambda b: _replace_header(b, index=1), "index/type"),
        (lambda b: _replace_header(b, anchor_root=b"\x01" * 32), "anchor_root"),
    ],
)
def test_chain_store_refuses_bad_blocks_and_stays_unchanged(tamper, fragment):
    store = ChainStore("vpp-0", keyring())
    store.append(_side_block(store, "vpp-0/n-002", 1, 0))
    bad = tamper(_side_block(store, "vpp-0/n-002", 2, 1))
    with pytest.raises(ChainError, match=fragment) as err:
        store.append(bad)
    assert err.value.subject.endswith(f"@{bad.header.height}")
    assert len(store) == 1


def test_collaborative_block_fields_and_anchor_leaf():
    store = ChainStore("vpp-1", keyring())
    trade = make_trade("vpp-1/n-000", "vpp-0/n-001", 10, 5)
    block = Block.create(identity("vpp-1/n-000"), chain="vpp-1", height=0,
                         kind=BlockKind.COLLABORATIVE, round=0, prev_hash=ZERO_HASH,
                         txs=[trade.id_bytes], index=1, type=7)
    store.append(block)
    assert block.anchor_leaf() == anchor_leaf(1, block.hash, 7)
    assert anchor_leaf(1, block.hash, 8) != block.anchor_leaf()
    assert Block.decode(block.encode()) == block
    with pytest.raises(ChainError, match="index 0"):
        Block.create(identity("vpp-1/n-000"), chain="vpp-1", height=0,
                     kind=BlockKind.COLLABORATIVE, round=0, prev_hash=ZERO_HASH,
                     txs=[trade.id_bytes], index=0, type=7).check()
    with pytest.raises(LedgerError, match="trade ids"):
        block.signed_trades()


def test_main_block_holds_anchor_root():
    leaves = [anchor_leaf(i, bytes([i]) * 32, 3) for i in range(3)]
    block = Block.create(identity("vpp-0/n-000"), chain="main", height=0, kind=BlockKind.MAIN,
                         round=0, prev_hash=ZERO_HASH, txs=[], anchor_root=merkle_root(leaves))
    block.check(keyring())
    assert BlockHeader.decode(block.header.encode()) == block.header
    with pytest.raises(ChainError, match="main block on chain"):
        _replace_header(block, chain="vpp-0").check()


def test_a_bounded_chain_store_keeps_linking_and_forgets_old_blocks():
    store = ChainStore("vpp-0", keyring(), keep=2)
    hashes = [store.append(_side_block(store, "vpp-0/n-002", 1, r)) for r in range(5)]
    assert len(store) == 5 and store.height == 4 and store.tip_hash == hashes[-1]
    assert [b.hash for b in store] == hashes[-2:]
    assert store.by_hash(hashes[-1]).header.height == 4
    with pytest.raises(ChainError, match="no longer in memory"):
        store.by_height(1)
    assert hashes[0] not in store


@given(orders())
def test_an_order_pickles_to_an_equal_order_through_its_checks(order):
    """Orders cross processes each round (forwarded to the cross-VPP book) by value through
    ``__init__``: every field arrives, and an order that fails its checks cannot be made
    on the other side either."""
    import pickle

    back = pickle.loads(pickle.dumps(order))
    assert back == order and back.encode() == order.encode()
    assert len(order.__reduce__()[1]) == len(dataclasses.fields(Order))
    bad = order.__reduce__()[1][:5] + (0,) + order.__reduce__()[1][6:]  # wh = 0
    with pytest.raises(LedgerError):
        Order(*bad)
