"""Settlement contract: atomic transfers, named refusals, and invariants over random sequences."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger_strategies import NODES, identity, keyring, make_trade
from mlts_ray.errors import LedgerError, SettlementError
from mlts_ray.ledger import Reject, Settlement, SignedTrade

START = {n: (5_000, 8_000) for n in NODES}


def signed(buyer, seller, wh, price, tag="") -> SignedTrade:
    return make_trade(buyer, seller, wh, price, 0, tag).sign(identity(buyer), identity(seller))


def test_a_trade_moves_money_and_energy_exactly():
    s = Settlement(keyring(), START)
    t = signed("vpp-0/n-000", "vpp-1/n-002", 1_500, 21)
    s.settle(t)
    assert s.balance("vpp-0/n-000") == (5_000 - 32, 8_000 + 1_500)
    assert s.balance("vpp-1/n-002") == (5_000 + 32, 8_000 - 1_500)
    assert s.is_settled(t.tx_id) and s.totals() == (5_000 * 8, 8_000 * 8)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda: signed("vpp-0/n-000", "vpp-0/n-001", 9_000, 1), Reject.OVERDRAFT_ENERGY),
        (lambda: signed("vpp-0/n-000", "vpp-0/n-001", 1_000, 5_001), Reject.OVERDRAFT_MONEY),
        (lambda: SignedTrade(signed("vpp-0/n-000", "vpp-0/n-001", 10, 1).trade, bytes(64), bytes(64)),
         Reject.BAD_SIGNATURE),
        (lambda: make_trade("vpp-0/n-000", "vpp-0/n-001", 10, 1).sign(
            identity("vpp-0/n-000"), identity("vpp-0/n-001")), None),
    ],
)
def test_refusals_name_the_trade_and_change_nothing(make, reason):
    s = Settlement(keyring(), START)
    trade = make()
    if reason is None:  # the valid one, then its replay
        s.settle(trade)
        reason = Reject.REPLAY
    before = s.balances()
    with pytest.raises(SettlementError) as err:
        s.settle(trade)
    assert err.value.reason == reason and err.value.tx_id == trade.tx_id
    assert str(err.value).startswith(trade.tx_id + ": " + reason)
    assert s.balances() == before


def test_bad_signature_names_the_party():
    good = signed("vpp-0/n-000", "vpp-0/n-001", 10, 1)
    forged = SignedTrade(good.trade, good.buyer_sig, good.buyer_sig)
    with pytest.raises(SettlementError, match="signature of vpp-0/n-001"):
        Settlement(keyring(), START).settle(forged)


def test_unknown_party_and_bad_accounts():
    s = Settlement(keyring(), {"vpp-0/n-000": (10, 10)})
    with pytest.raises(SettlementError, match="vpp-0/n-001 has no account"):
        s.settle(signed("vpp-0/n-000", "vpp-0/n-001", 1, 1))
    with pytest.raises(LedgerError, match="already open"):
        s.open_account("vpp-0/n-000", 1, 1)
    with pytest.raises(LedgerError, match="money_cents must be"):
        s.open_account("x", -1, 0)


def test_settle_block_is_all_or_nothing():
    s = Settlement(keyring(), START)
    ok = signed("vpp-0/n-000", "vpp-0/n-001", 100, 10, "a")
    too_big = signed("vpp-0/n-002", "vpp-0/n-003", 9_999, 1, "b")
    with pytest.raises(SettlementError) as err:
        s.settle_block([ok, too_big])
    assert err.value.tx_id == too_big.tx_id
    assert s.balances() == START and not s.is_settled(ok.tx_id)
    with pytest.raises(SettlementError, match="replay"):  # a duplicate inside one block
        s.settle_block([ok, ok])
    s.settle_block([ok])
    assert s.settled_count == 1


def test_overdraft_counts_earlier_trades_of_the_same_block():
    s = Settlement(keyring(), START)
    first = signed("vpp-0/n-000", "vpp-0/n-001", 5_000, 1, "a")
    second = signed("vpp-0/n-002", "vpp-0/n-001", 5_000, 1, "b")  # n-001 has 3,000 Wh left
    with pytest.raises(SettlementError, match="overdraft-energy"):
        s.settle_block([first, second])


# --- random sequences against a naive oracle ----------------------------------------------------

ops = st.lists(
    st.tuples(
        st.sampled_from(NODES), st.sampled_from(NODES), st.integers(1, 6_000),
        st.integers(0, 400), st.sampled_from(["good", "good", "good", "forged", "replay"]),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(ops, st.booleans())
def test_random_sequences_keep_every_invariant(sequence, as_blocks):
    s = Settlement(keyring(), START)
    model = dict(START)  # the naive oracle: plain dict arithmetic
    seen: set[str] = set()
    history: list[SignedTrade] = []
    for i, (buyer, seller, wh, price, kind) in enumerate(sequence):
        if buyer == seller:
            continue
        trade = signed(buyer, seller, wh, price, str(i))
        if kind == "forged":
            trade = SignedTrade(trade.trade, trade.seller_sig, trade.buyer_sig)
        elif kind == "replay" and history:
            trade = history[i % len(history)]
        amount = trade.trade.amount_cents
        b, sl = trade.trade.buyer, trade.trade.seller
        expect_ok = (kind != "forged" and trade.tx_id not in seen
                     and model[b][0] >= amount and model[sl][1] >= trade.trade.wh)
        if not expect_ok:
            with pytest.raises(SettlementError):
                s.settle(trade)
        else:
            if as_blocks:
                s.settle_block([trade])
            else:
                assert s.settle_each([trade]) == [None]
            model[b] = (model[b][0] - amount, model[b][1] + trade.trade.wh)
            model[sl] = (model[sl][0] + amount, model[sl][1] - trade.trade.wh)
            seen.add(trade.tx_id)
            history.append(trade)
        assert s.balances() == model
        assert all(m >= 0 and e >= 0 for m, e in s.balances().values())
        assert s.totals() == (5_000 * len(NODES), 8_000 * len(NODES))
    assert s.settled_count == len(seen)


def test_committed_blocks_skip_only_the_signature_check():
    s = Settlement(keyring(), START)
    good = signed("vpp-0/n-000", "vpp-0/n-001", 10, 1, "a")
    unsigned = SignedTrade(good.trade, bytes(64), bytes(64))
    assert s.settle_each([unsigned])[0].reason == Reject.BAD_SIGNATURE  # a loose trade: checked
    assert s.settle_each([unsigned], committed=True) == [None]  # consensus checked it already
    too_big = signed("vpp-0/n-002", "vpp-0/n-003", 9_999, 1, "b")
    outcomes = s.settle_each([unsigned, too_big], committed=True)
    assert [o.reason for o in outcomes] == [Reject.REPLAY, Reject.OVERDRAFT_ENERGY]


# --- the replay guard is bounded by the rounds a replay could still reach -----------------------

@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 7)), max_size=60))
def test_the_replay_guard_forgets_past_rounds_and_refuses_their_trades(steps):
    """Against a naive oracle that remembers every id forever: a trade settles iff its round is
    not before the current one and its id is new; the guard holds only the current rounds' ids."""
    s = Settlement(keyring(), {n: (10**9, 10**9) for n in NODES})
    current, forever = 0, set()
    made: dict[tuple[int, int], SignedTrade] = {}
    for advance, tag in steps:
        if advance == 0:
            current += 1
            s.forget_before(current)
            continue
        rnd = max(0, current - advance + 1)  # this round or up to four before it
        trade = made.setdefault((rnd, tag), make_trade(
            "vpp-0/n-000", "vpp-0/n-001", 1, 1, rnd, str(tag)).sign(
                identity("vpp-0/n-000"), identity("vpp-0/n-001")))
        expect = rnd >= current and trade.tx_id not in forever
        (err,) = s.settle_each([trade])
        assert (err is None) == expect, (rnd, current, tag)
        if err is not None:
            assert err.reason == Reject.REPLAY
        else:
            forever.add(trade.tx_id)
        live = {t.tx_id for (r, _), t in made.items() if r >= current and t.tx_id in forever}
        assert s.settled_count == len(live)
