"""Censorship and slowness are caught (issue 34, item 6). A member holding the client's request
does not take a proposal that leaves out a valid trade of it (Castro-Liskov's request timer,
within the round), and expects the proposal within the accountability bound; so a ``censor``
or ``slow-primary`` primary is replaced in the round it leads -- after one view per faulty
primary in a row -- loses credit for it, and no trade stays out of the chain."""

from __future__ import annotations

import pytest

from consensus_harness import make_instance, run_instance, trades_for
from mlts_ray.analysis.load import load_table
from mlts_ray.config import build_config
from mlts_ray.consensus.committee import pbft_committee
from mlts_ray.consensus.instance import Evidence
from mlts_ray.mlts.topology import vpp_layout
from mlts_ray.runtime.local import run_local


def test_members_refuse_a_censored_proposal_and_the_next_view_carries_the_trades():
    n = 7
    inst = make_instance(n, certify=False)
    run = run_instance(inst, trades_for(n, 4), behaviours={inst.primary(0): "censor"})
    assert sorted(run.committed) == list(range(n)) and len(run.digests()) == 1
    assert {c.view for c in run.committed.values()} == {1}
    assert len(run.block().txs) == 4  # view 1's primary packed the request's trades
    seen = {ob.node for ob in run.sim.observations
            if isinstance(ob.value, Evidence) and ob.value.kind == "censorship"}
    assert seen >= set(range(1, n))  # every honest member saw it


def _run(tmp_path, behaviour: str, **consensus):
    cfg = build_config({
        "experiment": {"seed": 3, "rounds": 12, "runtime": "local"},
        "topology": {"vpps": 1, "nodes_per_vpp": 13},
        "consensus": {"algorithm": "pbft", "pbft_primary": "rotate", **consensus},
        "faults": {"byzantine_fraction": 0.25, "behaviours": [behaviour]},
    })
    run = run_local(cfg, tmp_path)
    side = load_table(run, "consensus").query("chain == 'vpp-0'").set_index("round")
    credits = load_table(run, "credits").query("chain == 'vpp-0'")
    trades = load_table(run, "trades").query("chain == 'vpp-0'")
    faulty = set(credits[credits.behaviour == behaviour].node)
    nodes = vpp_layout(cfg.topology, 0).nodes
    return cfg, side, credits, trades, faulty, nodes


@pytest.mark.parametrize("behaviour", ["censor", "slow-primary"])
def test_a_faulty_primary_is_replaced_within_its_round_and_pays(tmp_path, behaviour):
    """The bound: a round whose view-0 primary is faulty decides in view c, c the faulty
    primaries in a row from it (each is replaced by one view change), with every trade of the
    round settled in that round's block. Every censor that leads a view loses credit; a slow
    primary loses it for view 0 (the proposal timer's), while one that leads a later view is
    held to the doubled view timeout only and may be replaced without blame."""
    cfg, side, credits, trades, faulty, nodes = _run(tmp_path, behaviour)
    led = 0
    for rnd, row in side.iterrows():
        order = pbft_committee(nodes=nodes, round_=rnd, pbft_primary="rotate").members
        run_of = next(i for i, p in enumerate(order) if p not in faulty)
        assert row.views == run_of + 1 and row.primary not in faulty, (rnd, row.primary)
        blamed = order[:run_of] if behaviour == "censor" else order[:min(run_of, 1)]
        for p in blamed:
            led += 1
            delta = credits[(credits["round"] == rnd) & (credits.node == p)].delta.item()
            assert delta < 0, (rnd, p, delta)
    assert led >= 3
    assert (trades.status == "settled").all() and len(trades) > 50  # nothing left out


def test_under_the_old_fixed_timeout_a_slow_primary_leads_and_is_paid(tmp_path):
    """The record of the old world: 0.8 of a fixed 500 ms is under the timeout, and without the
    proposal timer nobody replaces the dawdling primary."""
    cfg, side, credits, _, faulty, nodes = _run(tmp_path, "slow-primary", view_timeout_ms=500,
                                                accountability_factor=0)
    slow = [rnd for rnd in side.index
            if pbft_committee(nodes=nodes, round_=rnd, pbft_primary="rotate").members[0] in faulty]
    assert slow and all(side.loc[r, "views"] == 1 for r in slow)
    assert all(side.loc[r, "latency_ms"] > 400 for r in slow)
    assert not (credits[credits.node.isin(faulty)].delta < 0).any()
