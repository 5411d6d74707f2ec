"""The two market mechanisms against a naive oracle, and the metered trading day's balances as
properties over seeds, markets and churn."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlts_ray.analysis.load import load_table
from mlts_ray.config import build_config
from mlts_ray.ledger.settlement import GRID
from mlts_ray.ledger.tx import Order, Side
from mlts_ray.mlts.workload import match, match_call
from mlts_ray.runtime.local import run_local

orders = st.lists(st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 500),
                            st.integers(8, 40), st.integers(0, 10_000)), max_size=30)


def _book(raw) -> list[Order]:
    return [Order(f"vpp-0/n-{i:03d}", "vpp-0", 0, 0, side, wh, price, t)
            for i, (side, wh, price, t) in enumerate(raw)]


def _oracle_volume(book: list[Order]) -> int:
    """The most energy any single price can clear: max over p of min(demand(p), supply(p))."""
    best = 0
    for p in {o.price for o in book}:
        demand = sum(o.wh for o in book if o.side == Side.BUY and o.price >= p)
        supply = sum(o.wh for o in book if o.side == Side.SELL and o.price <= p)
        best = max(best, min(demand, supply))
    return best


@settings(max_examples=300, deadline=None)
@given(orders)
def test_the_call_auction_clears_the_most_at_one_price_every_fill_accepts(raw):
    book = _book(raw)
    fills, left = match_call(book)
    assert sum(f.wh for f in fills) == _oracle_volume(book)
    prices = {f.price for f in fills}
    assert len(prices) <= 1  # pay-as-clear: one price
    for f in fills:
        assert f.sell.price <= f.price <= f.buy.price
    # nothing left that could still trade: the best open bid is below the best open ask
    bids = [o.price for o in left if o.side == Side.BUY]
    asks = [o.price for o in left if o.side == Side.SELL]
    assert not bids or not asks or max(bids) < min(asks)
    # every Wh is either filled or left open
    for o in book:
        filled = sum(f.wh for f in fills if o in (f.buy, f.sell))
        rest = sum(x.wh for x in left if x.order_id == o.order_id)
        assert filled + rest == o.wh


@settings(max_examples=200, deadline=None)
@given(orders)
def test_the_continuous_auction_pays_each_resting_price_and_leaves_no_cross(raw):
    book = _book(raw)
    fills, left = match(book)
    for f in fills:
        assert f.sell.price <= f.price <= f.buy.price
        assert f.price in (f.buy.price, f.sell.price)  # pay-as-bid: the resting order's
    bids = [o.price for o in left if o.side == Side.BUY]
    asks = [o.price for o in left if o.side == Side.SELL]
    assert not bids or not asks or max(bids) < min(asks)
    # (in time order it may clear more than any single price would: pay-as-bid discriminates)
    demand = sum(o.wh for o in book if o.side == Side.BUY)
    assert sum(f.wh for f in fills) <= min(demand, sum(o.wh for o in book) - demand)


@settings(max_examples=100, deadline=None)
@given(orders)
def test_the_cross_vpp_books_fills_alone_are_the_fills_with_the_orders_left_open(raw):
    """The cross-VPP book reads only the fills: without the orders left open (which it never
    built) both auctions fill exactly as with them."""
    book = _book(raw)
    for market in (match, match_call):
        fills, left = market(book)
        assert market(book, left_open=False) == (fills, [])


@pytest.mark.parametrize("market, online_share, seed", [
    ("cda", 1.0, 1), ("call", 1.0, 2), ("cda", 0.6, 3), ("call", 0.5, 4)])
def test_every_period_balances_physically_and_money_is_conserved_with_the_grid(
        tmp_path, market, online_share, seed):
    cfg = build_config({
        "experiment": {"seed": seed, "rounds": 6, "runtime": "local",
                       "start": "2026-06-21T11:00"},
        "topology": {"vpps": 3, "nodes_per_vpp": 12},
        "workload": {"market": market, "online_share": online_share, "session_periods": 3},
        "faults": {"byzantine_fraction": 0.2, "behaviours": ["abandon", "double-spend"]},
    })
    run = run_local(cfg, tmp_path)
    energy, trades = load_table(run, "energy"), load_table(run, "trades")
    balances, market_t = load_table(run, "balances"), load_table(run, "market")
    settled = trades[trades.status == "settled"]
    for rnd, e in energy.groupby("round"):
        # each node: generation - consumption - storage in + storage out = net = what it sold
        # less what it bought plus its grid export less its import
        net = e.generation_wh - e.consumption_wh - e.charge_wh + e.discharge_wh
        assert (net == e.net_wh).all()
        assert (e.net_wh == e.sold_wh - e.bought_wh + e.export_wh - e.import_wh).all()
        # in total, the VPPs' net is the grid's net take
        assert e.net_wh.sum() == e.export_wh.sum() - e.import_wh.sum()
        s = settled[settled["round"] == rnd]
        assert e.sold_wh.sum() == e.bought_wh.sum() == s.wh.sum()
        offline = set(e.node[~e.online])
        assert not offline & (set(s.buyer) | set(s.seller))  # an offline node trades nothing
        b = balances[balances["round"] == rnd]
        assert b.money.sum() == cfg.workload.initial_money_cents * (len(b) - 1)  # grid from 0
        assert (b.energy_wh == 0).all()  # energy lives one period
    grid = balances[balances.node == GRID]
    assert len(grid) == cfg.experiment.rounds
    if market == "call":
        for _, m in market_t[market_t.trades > 0].iterrows():
            assert m.price_min == m.price_max  # one clearing price per book and period
    prices = settled.price
    assert prices.between(cfg.workload.feed_in_cents, cfg.workload.retail_cents).all()
    if online_share < 1:
        assert (~energy.online).any() and energy.online.any()
