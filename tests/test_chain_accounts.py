"""The ledger split by chain (``ledger.chain_accounts``): against one undivided ``Settlement`` as
the oracle, every sequence of the operations a round makes -- mints, blocks of intra- and
cross-VPP trades (overdrafts, forgeries, replays, round horizons), grid closes, fines across
shards -- gives the same outcomes and balances; and a two-phase step locks what it reads,
commits only that, and leaves nothing half-applied when it fails."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger_strategies import NODES, identity, keyring, make_trade
from mlts_ray.errors import LedgerError
from mlts_ray.ledger import Settlement, SignedTrade
from mlts_ray.ledger.chain_accounts import Ledgers, one_by_one
from mlts_ray.names import MAIN, home_of
from mlts_ray.ledger.settlement import GRID

GRID_NODE = "grid-0"  # a main-chain account outside every VPP (a supervisor that fines)
START = {**{n: (3_000, 0) for n in NODES}, GRID_NODE: (3_000, 0), GRID: (0, 0)}


def signed(buyer, seller, wh, price, rnd, tag) -> SignedTrade:
    return make_trade(buyer, seller, wh, price, rnd, tag).sign(identity(buyer), identity(seller))


accounts = st.sampled_from([*NODES, GRID_NODE])
trade_spec = st.tuples(st.sampled_from(NODES), st.sampled_from(NODES), st.integers(1, 4_000),
                       st.integers(0, 300), st.sampled_from(["good"] * 4 + ["forged", "replay"]))
op = st.one_of(
    st.tuples(st.just("mint"), st.sampled_from(NODES), st.integers(0, 5_000)),
    st.tuples(st.just("block"), st.lists(trade_spec, min_size=1, max_size=6), st.booleans()),
    st.tuples(st.just("close"), st.sampled_from(NODES), st.integers(0, 3_000)),
    st.tuples(st.just("fine"), accounts, accounts, st.integers(0, 4_000)),
    st.tuples(st.just("round"),),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(op, max_size=30))
def test_shards_settle_exactly_as_one_ledger(ops):
    oracle, split = Settlement(keyring(), START), Ledgers(keyring(), START)
    rnd, history = 0, []
    for i, (kind, *args) in enumerate(ops):
        if kind == "mint":
            oracle.mint(*args), split.mint(*args)
        elif kind == "close":
            node, deficit = args
            assert oracle.close(node, deficit, 8, 30) == split.close(node, deficit, 8, 30)
        elif kind == "fine":
            src, dst, cents = args
            assert oracle.transfer_money(src, dst, cents) == split.transfer_money(src, dst, cents)
        elif kind == "round":
            rnd += 1
            oracle.forget_before(rnd), split.forget_before(rnd)
        else:
            specs, committed = args
            block = []
            for j, (buyer, seller, wh, price, how) in enumerate(specs):
                if how == "replay" and history:
                    block.append(history[(i + j) % len(history)])
                elif buyer != seller:
                    t = signed(buyer, seller, wh, price, rnd, f"{i}.{j}")
                    block.append(SignedTrade(t.trade, t.seller_sig, t.buyer_sig)
                                 if how == "forged" else t)
            history += block
            want = [e and (e.tx_id, e.reason) for e in oracle.settle_each(block, committed)]
            got = [e and (e.tx_id, e.reason) for e in split.settle_each(block, committed)]
            assert got == want
        assert split.balances() == oracle.balances()
        assert split.totals() == oracle.totals() == (3_000 * (len(NODES) + 1), split.totals()[1])
        assert not any(p.locks for p in split.parts.values())  # every step ended


def test_accounts_live_in_their_chains_shard():
    split = Ledgers(keyring(), START)
    assert {home_of(n) for n in NODES} == {"vpp-0", "vpp-1"}
    assert set(split.parts) == {"vpp-0", "vpp-1", MAIN}
    assert split.parts["vpp-0"].ledger.holds("vpp-0/n-002")
    assert not split.parts["vpp-1"].ledger.holds("vpp-0/n-002")
    assert split.parts[MAIN].ledger.holds(GRID_NODE)
    split.close("vpp-1/n-000", 100, 8, 30)  # the VPP's share of the grid takes the bill
    assert split.parts["vpp-1"].ledger.balance(GRID) == (3, 0)
    assert split.parts[MAIN].ledger.balance(GRID) == (0, 0) and split.balance(GRID) == (3, 0)


def test_a_cross_trade_settles_in_both_shards_and_its_replay_is_seen_by_either():
    split = Ledgers(keyring(), START)
    split.mint("vpp-1/n-001", 500)
    t = signed("vpp-0/n-000", "vpp-1/n-001", 400, 50, 0, "x")
    assert split.settle_each([t], committed=True) == [None]
    assert split.parts["vpp-0"].ledger.is_settled(t.tx_id)
    assert split.parts["vpp-1"].ledger.is_settled(t.tx_id)
    assert split.balance("vpp-0/n-000") == (3_000 - 20, 400)
    assert split.balance("vpp-1/n-001") == (3_000 + 20, 100)
    (err,) = split.settle_each([t], committed=True)
    assert err.reason == "replay"


def test_each_shard_is_asked_only_about_its_own_parties_and_trades():
    """A step's prepare tells a shard the parties it holds and the trade ids it keeps, not
    the whole step's: the message (and the shard's work) grows with its share."""
    asked = {}

    def recording(calls):
        for shard, method, args in calls:
            if method == "prepare":
                asked[shard.name] = (set(args[1]), set(args[2]))
        return one_by_one(calls)

    split = Ledgers(keyring(), START, fan_out=recording)
    split.mint("vpp-1/n-001", 500)
    split.mint(GRID_NODE, 500)
    a = signed("vpp-0/n-000", "vpp-1/n-001", 400, 50, 0, "a")
    b = signed("vpp-0/n-002", GRID_NODE, 300, 50, 0, "b")
    assert split.settle_each([a, b], committed=True) == [None, None]
    ids = {"a": (0, a.tx_id), "b": (0, b.tx_id)}
    assert asked == {"vpp-0": ({"vpp-0/n-000", "vpp-0/n-002"}, {ids["a"], ids["b"]}),
                     "vpp-1": ({"vpp-1/n-001"}, {ids["a"]}),
                     MAIN: ({GRID_NODE}, {ids["b"]})}


def test_a_prepared_account_is_locked_until_the_step_ends():
    split = Ledgers(keyring(), START)
    part = split.parts["vpp-0"]
    vote = part.prepare(7, ["vpp-0/n-000", "vpp-1/n-000"], [])
    assert dict(vote.balances) == {"vpp-0/n-000": (3_000, 0)}  # only what it holds
    with pytest.raises(LedgerError, match="account vpp-0/n-000.*locked by cross-chain step 7"):
        split.mint("vpp-0/n-000", 10)
    with pytest.raises(LedgerError, match="locked"):
        split.transfer_money(GRID_NODE, "vpp-0/n-000", 10)
    with pytest.raises(LedgerError, match="locked"):
        part.prepare(8, ["vpp-0/n-000"], [])
    split.mint("vpp-0/n-001", 10)  # the others are not locked
    part.abort(7)
    split.mint("vpp-0/n-000", 10)
    assert split.balance("vpp-0/n-000") == (3_000, 10)


def test_a_commit_writes_only_what_its_step_locked():
    part = Ledgers(keyring(), START).parts["vpp-0"]
    part.prepare(3, ["vpp-0/n-000"], [])
    with pytest.raises(LedgerError, match=r"did not lock: \['vpp-0/n-001'\]"):
        part.commit(3, {"vpp-0/n-001": (0, 0)}, [])
    with pytest.raises(LedgerError, match="overdraw"):
        part.commit(3, {"vpp-0/n-000": (-1, 0)}, [])
    part.commit(3, {"vpp-0/n-000": (2_000, 5)}, [])
    assert part.ledger.balance("vpp-0/n-000") == (2_000, 5) and not part.locks


def test_a_step_that_fails_to_decide_aborts_everywhere():
    split = Ledgers(keyring(), START)
    before = split.balances()

    def broken(scratch):
        scratch.transfer_money("vpp-0/n-000", "vpp-1/n-000", 100)
        raise RuntimeError("the coordinator failed mid-step")

    with pytest.raises(RuntimeError):
        split._step_over({"vpp-0/n-000", "vpp-1/n-000"}, {}, broken)
    assert split.balances() == before
    assert not any(p.locks for p in split.parts.values())


def test_an_unknown_account_is_named_before_anything_is_locked():
    split = Ledgers(keyring(), START)
    with pytest.raises(LedgerError, match="account vpp-7/n-000: no such account"):
        split.transfer_money("vpp-0/n-000", "vpp-7/n-000", 5)
    assert not any(p.locks for p in split.parts.values())
