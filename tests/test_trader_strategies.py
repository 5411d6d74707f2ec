"""Byzantine traders (issue 14): a ``forge`` trader's orders really go out badly signed, are
refused by the VMC and counted against their signer."""

from __future__ import annotations

import pytest

from mlts_ray.analysis.load import load_table
from mlts_ray.config import build_config
from mlts_ray.consensus.byzantine import forged
from mlts_ray.consensus.messages import Certificate
from mlts_ray.ledger.crypto import DerivedKeyRing
from mlts_ray.mlts.trading import TradingSpec, trade_round
from mlts_ray.mlts.workload import make_orders
from mlts_ray.runtime.local import run_local


def _spec(behaviour: dict[str, str]) -> TradingSpec:
    traders = tuple(sorted(behaviour))
    return TradingSpec("vpp-0", traders, {n: (100_000, 20_000) for n in traders}, behaviour)


def test_a_forge_traders_orders_are_refused_and_counted():
    cfg = build_config({"workload": {"orders_per_node": 3}})
    keys = DerivedKeyRing(cfg.experiment.seed)
    behaviour = {f"vpp-0/n-{i:03d}": "honest" for i in range(1, 9)} | {"vpp-0/n-009": "forge"}
    out = trade_round(cfg, _spec(behaviour), 0, keys.identity, keys)
    assert out.offences == {"vpp-0/n-009": 3}  # every order it signed, and nobody else's
    assert all("vpp-0/n-009" not in (t.trade.buyer, t.trade.seller) for t in out.trades)


def test_forged_breaks_every_signature_it_can_and_refuses_what_it_cannot():
    keys = DerivedKeyRing(1)
    cfg = build_config({"workload": {"orders_per_node": 1}})
    (order,) = make_orders(1, cfg.workload, "vpp-0/n-001", "vpp-0", 0, 100_000, 20_000)[:1]
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
    assert len(forge) and (forge.delta < 0).all()
    assert first[first.behaviour == "honest"].delta.min() > forge.delta.max()
