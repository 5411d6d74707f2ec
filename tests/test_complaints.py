"""Complaints (issue 14 item 3): a VMC's signed accusation, judged from its own bytes alone;
a false one costs the complainant its stake, and every one travels in its round's record."""

from __future__ import annotations

import dataclasses

import pytest

from mlts_ray.analysis.certificates import records_of
from mlts_ray.analysis.load import load_table
from mlts_ray.config import build_config
from mlts_ray.consensus.byzantine import forged
from mlts_ray.consensus.complaints import Complaint, file, upheld
from mlts_ray.ledger.block import Block
from mlts_ray.ledger.crypto import DerivedKeyRing
from mlts_ray.ledger.tx import Trade
from mlts_ray.mlts.workload import make_orders
from mlts_ray.runtime.local import run_local

KEYS = DerivedKeyRing(1)
VMC, NODE, OTHER = "vpp-0/vmc", "vpp-0/n-001", "vpp-0/n-002"


def _order(node=NODE, rnd=0):
    cfg = build_config({"workload": {"orders_per_node": 1}})
    (order,) = make_orders(1, cfg.workload, node, "vpp-0", rnd, 100_000, 2_000, 0)[:1]
    return order.sign(KEYS.identity(node))


def _trade(rnd=0):
    return Trade("vpp-0", rnd, NODE, OTHER, "vpp-0", "vpp-0", 500, 20, "b", "s")


def _signed_trade(rnd=0):
    from mlts_ray.ledger.tx import SignedTrade
    t = _trade(rnd)
    kind, chain, data = t.signing_data()
    return SignedTrade(t, KEYS.identity(NODE).sign_root(kind, chain, data),
                       KEYS.identity(OTHER).sign_root(kind, chain, data))


def _complain(accused, reason, exhibit, rnd=3):
    return file(KEYS.identity(VMC), "vpp-0", rnd, accused, reason, exhibit)


def test_each_reason_is_upheld_by_its_exhibit():
    assert upheld(_complain(NODE, "bad-signature", forged(_order()).encode()), KEYS)
    assert upheld(_complain(NODE, "replay", _signed_trade(rnd=1).encode()), KEYS)
    assert upheld(_complain(NODE, "abandoned", _trade(rnd=3).encode()), KEYS)


@pytest.mark.parametrize("case", [
    "honest order called forged", "forged order of another node", "fresh contract called replay",
    "abandoned in another round", "stranger called abandoner", "unknown reason",
    "broken complainant signature", "changed accused after signing", "exhibit of wrong type",
])
def test_a_false_or_tampered_complaint_is_not_upheld(case):
    c = {
        "honest order called forged": lambda: _complain(NODE, "bad-signature", _order().encode()),
        "forged order of another node": lambda: _complain(OTHER, "bad-signature",
                                                          forged(_order()).encode()),
        "fresh contract called replay": lambda: _complain(NODE, "replay",
                                                          _signed_trade(rnd=3).encode()),
        "abandoned in another round": lambda: _complain(NODE, "abandoned", _trade(1).encode()),
        "stranger called abandoner": lambda: _complain("vpp-0/n-009", "abandoned",
                                                       _trade(3).encode()),
        "unknown reason": lambda: _complain(NODE, "rude", _trade(3).encode()),
        "broken complainant signature": lambda: dataclasses.replace(
            _complain(NODE, "abandoned", _trade(3).encode()), sig=bytes(64)),
        "changed accused after signing": lambda: dataclasses.replace(
            _complain(NODE, "abandoned", _trade(3).encode()), accused=OTHER),
        "exhibit of wrong type": lambda: _complain(NODE, "replay", b"\x01garbage"),
    }[case]()
    assert not upheld(c, KEYS)
    assert not upheld(Complaint.decode(c.encode()), KEYS)  # and as the chain stores it


def test_complaints_travel_in_their_rounds_record_and_cost_the_accused(tmp_path):
    cfg = build_config({
        "experiment": {"seed": 3, "rounds": 4, "runtime": "local"},
        "topology": {"vpps": 2, "nodes_per_vpp": 16},
        "faults": {"byzantine_fraction": 0.3, "behaviours": ["forge", "abandon"]},
    })
    run = run_local(cfg, tmp_path)
    keys = DerivedKeyRing(cfg.experiment.seed)
    credits = load_table(run, "credits")
    behaviour = dict(zip(credits.node, credits.behaviour, strict=False))
    on_chain = []
    for raw in load_table(run, "blocks").payload:
        for record in records_of(Block.decode(raw)):
            on_chain += [(record.chain, record.round, Complaint.decode(c))
                         for c in record.complaints]
    assert on_chain and all(upheld(c, keys) for _, _, c in on_chain)
    assert all((chain, rnd) == (c.chain, c.round) for chain, rnd, c in on_chain)
    assert {behaviour[c.accused] for _, _, c in on_chain} == {"forge", "abandon"}
    # the accused of round 0 lost credit that round; no honest node was accused
    accused0 = {c.accused for _, rnd, c in on_chain if rnd == 0}
    first = credits[credits["round"] == 0].set_index("node")
    assert accused0 and (first.loc[sorted(accused0), "delta"] < 0).all()


def test_a_false_complaint_costs_its_complainant_the_stake():
    from mlts_ray.runtime.rounds import Rounds
    cfg = build_config({"experiment": {"seed": 3, "rounds": 1, "runtime": "local"},
                        "topology": {"vpps": 1, "nodes_per_vpp": 8}})
    sim = Rounds.local(cfg).sim
    side = sim.sides["vpp-0"]
    side.begin(0)
    trader = side.layout.traders[0]
    side.complain(trader, "bad-signature", _trade(0).encode(), 0)  # a contract nobody forged
    from mlts_ray.consensus.credit import judge_complaints
    lost = judge_complaints(side.facts, sim.keys, cfg.credit.complaint_stake)
    assert lost == {side.layout.vmc: cfg.credit.complaint_stake}
    assert not side.facts.trade_offences
