"""Byzantine traders (issue 14): a ``forge`` trader's orders really go out badly signed, are
refused by the VMC and counted against their signer."""

from __future__ import annotations

import pytest

from mlts_ray.analysis.load import load_table
from mlts_ray.config import build_config
from mlts_ray.consensus.byzantine import forged
from mlts_ray.consensus.complaints import upheld
from mlts_ray.consensus.messages import Certificate
from mlts_ray.ledger.crypto import DerivedKeyRing
from mlts_ray.mlts.trading import TradingSpec, trade_round
from mlts_ray.mlts.workload import make_orders
from mlts_ray.runtime.local import run_local
from mlts_ray.population.registry import strategies_of


def _positions(traders, money=100_000, wh=2_000):
    """Alternate sellers (a surplus of ``wh``) and buyers (a deficit of ``wh``)."""
    balances = {n: (money, wh if i % 2 else 0) for i, n in enumerate(traders)}
    deficits = {n: 0 if i % 2 else wh for i, n in enumerate(traders)}
    return balances, deficits


def _spec(behaviour: dict[str, str], recent=()) -> TradingSpec:
    traders = tuple(sorted(behaviour))
    return TradingSpec("vpp-0", traders, *_positions(traders), _traders(behaviour),
                       tuple(recent), vmc="vpp-0/vmc")


def _traders(behaviour: dict[str, str]) -> dict:
    """Each node's trader strategy, as the population hands it out."""
    return {n: strategies_of(b).trader for n, b in behaviour.items()}


def test_a_forge_traders_orders_are_refused_and_counted():
    cfg = build_config({"workload": {"orders_per_node": 3}})
    keys = DerivedKeyRing(cfg.experiment.seed)
    behaviour = {f"vpp-0/n-{i:03d}": "honest" for i in range(1, 9)} | {"vpp-0/n-009": "forge"}
    out = trade_round(cfg.workload, cfg.experiment.seed, _spec(behaviour), 0, keys.identity, keys)
    assert out.offences == {"vpp-0/n-009": 3}  # every order it signed, and nobody else's
    assert all(upheld(c, keys) and c.complainant == "vpp-0/vmc" for c in out.complaints)
    assert all("vpp-0/n-009" not in (t.trade.buyer, t.trade.seller) for t in out.trades)


def test_forged_breaks_every_signature_it_can_and_refuses_what_it_cannot():
    keys = DerivedKeyRing(1)
    cfg = build_config({"workload": {"orders_per_node": 1}})
    (order,) = make_orders(1, cfg.workload, "vpp-0/n-001", "vpp-0", 0, 100_000, 2_000, 0)[:1]
    signed = order.sign(keys.identity("vpp-0/n-001"))
    assert signed.verify(keys) and not forged(signed).verify(keys)
    cert = Certificate(b"block", ())
    assert forged(cert) is cert  # it carries only others' signatures
    with pytest.raises(TypeError, match="nothing to forge"):
        forged("a string")


def test_forge_traders_lose_credit_in_a_whole_run(tmp_path):
    cfg = build_config({
        "experiment": {"seed": 3, "rounds": 3, "runtime": "local"},
        "topology": {"vpps": 2, "nodes_per_vpp": 10},
        "faults": {"byzantine_fraction": 0.3, "behaviours": ["forge"]},
    })
    credits = load_table(run_local(cfg, tmp_path), "credits")
    first = credits[credits["round"] == 0]
    forge = first[first.behaviour == "forge"]
    # a forger with no position this period posts nothing to forge: only those that did pay
    assert len(forge) and (forge.delta <= 0).all() and (forge.delta < 0).any()
    assert first[first.behaviour == "honest"].delta.min() >= 0


def test_a_double_spender_offers_what_it_does_not_hold():
    cfg = build_config({"workload": {"orders_per_node": 4}})
    keys = DerivedKeyRing(cfg.experiment.seed)
    behaviour = {f"vpp-0/n-{i:03d}": "double-spend" for i in range(1, 9)}
    spec = TradingSpec("vpp-0", tuple(sorted(behaviour)),  # little of either
                       *_positions(sorted(behaviour), money=2_000, wh=1_000),
                       _traders(behaviour))
    out = trade_round(cfg.workload, cfg.experiment.seed, spec, 0, keys.identity, keys)
    over = 0
    for node in behaviour:
        sold = sum(t.trade.wh for t in out.trades if t.trade.seller == node)
        paid = sum(t.trade.amount_cents for t in out.trades if t.trade.buyer == node)
        over += sold > 1_000 or paid > 2_000
    assert over >= 1 and not out.offences  # well signed: only settlement can refuse them


def test_a_replayer_resubmits_an_old_contract_and_is_refused_and_counted():
    cfg = build_config({"workload": {"orders_per_node": 2}})
    keys = DerivedKeyRing(cfg.experiment.seed)
    honest = {f"vpp-0/n-{i:03d}": "honest" for i in range(1, 9)}
    first = trade_round(cfg.workload, cfg.experiment.seed, _spec(honest), 0, keys.identity, keys)
    old = first.trades[0]
    replayer = old.trade.seller
    spec = _spec(honest | {replayer: "replay"}, first.trades)
    out = trade_round(cfg.workload, cfg.experiment.seed, spec, 1, keys.identity, keys)
    assert out.offences == {replayer: 1}
    (complaint,) = out.complaints
    assert complaint.reason == "replay" and upheld(complaint, keys)
    assert old.tx_id not in {t.tx_id for t in out.trades}


def test_double_spenders_are_refused_by_settlement_and_replayers_lose_credit(tmp_path):
    cfg = build_config({
        "experiment": {"seed": 3, "rounds": 4, "runtime": "local"},
        "topology": {"vpps": 2, "nodes_per_vpp": 12},
        "workload": {"orders_per_node": 4, "initial_money_cents": 2_000},
        "faults": {"byzantine_fraction": 0.4, "behaviours": ["double-spend", "replay"]},
    })
    run = run_local(cfg, tmp_path)
    trades, credits = load_table(run, "trades"), load_table(run, "credits")
    behaviour = dict(zip(credits.node, credits.behaviour, strict=False))
    overdrafts = trades[trades.reason.str.startswith("overdraft")]
    assert len(overdrafts)
    offenders = {r.seller if r.reason == "overdraft-energy" else r.buyer
                 for r in overdrafts.itertuples()}
    assert {behaviour[n] for n in offenders} == {"double-spend"}  # never an honest party
    last = credits[credits["round"] == credits["round"].max()]
    mean = last.groupby("behaviour").credit.mean()
    assert mean["replay"] < mean["honest"] and mean["double-spend"] < mean["honest"]


def test_the_book_forwards_its_open_orders_before_any_contract_is_signed(monkeypatch):
    """A side chain's trading in two steps (``SideService.open`` then ``consensus_job``): the
    book (orders, the VMC's checks, matching, what goes on to the cross-VPP book) signs no
    contract, and signing its fills afterwards gives exactly the one-step trading: the same
    trades, forwarded orders and complaints in the same order, with forgers, walkers and
    replayers among the traders."""
    from mlts_ray.mlts import trading

    cfg = build_config({"workload": {"orders_per_node": 3, "cross_vpp_share": 0.5}})
    keys = DerivedKeyRing(cfg.experiment.seed)
    kinds = ["honest", "forge", "abandon", "replay", "honest", "double-spend"]
    behaviour = {f"vpp-0/n-{i:03d}": kinds[i % len(kinds)] for i in range(1, 13)}
    first = trade_round(cfg.workload, cfg.experiment.seed, _spec(behaviour), 0, keys.identity, keys)
    spec = _spec(behaviour, recent=first.trades)  # a replayer resubmits one of its own
    whole = trade_round(cfg.workload, cfg.experiment.seed, spec, 1, keys.identity, keys)
    assert whole.trades and whole.forwarded and {c.reason for c in whole.complaints} == {
        "bad-signature", "abandoned", "replay"}

    def no_contract(*args):
        raise AssertionError("the book signed a contract")

    with monkeypatch.context() as m:
        m.setattr(trading, "contract", no_contract)
        booked = trading.book(cfg.workload, cfg.experiment.seed, spec, 1, keys.identity, keys)
    assert booked.forwarded == whole.forwarded and booked.fills
    assert trading.sign_fills(booked, keys.identity) == whole
