"""Credit that separates honest from faulty nodes (issue 15): penalties fall only on nodes the
chain names, faulty nodes leave the committee for good, a slow primary is replaced, and verify
replays every credit value from the blocks."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlts_ray.analysis.load import load_table
from mlts_ray.analysis.verify import verify_run
from mlts_ray.config import build_config
from mlts_ray.runtime.local import run_local

EVERY_BEHAVIOUR = ["crash", "silent", "equivocate", "forge", "delay", "abandon", "false-audit",
                   "double-spend", "replay"]
# withholding nodes vote and propose as honest ones do (nothing convicts them): credit cannot
# unseat them, but the chain's record of them must still replay exactly
REPLAYED = [*EVERY_BEHAVIOUR, "withhold", "withhold-half"]


def _run(tmp_path, rounds=40, **sections):
    raw = {"experiment": {"seed": 5, "rounds": rounds, "runtime": "local"},
           "topology": {"vpps": 1, "nodes_per_vpp": 30},
           "consensus": {"algorithm": "dce-pbft", "side_committee_min": 7}}
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    cfg = build_config(raw)
    run = run_local(cfg, tmp_path)
    return cfg, run, load_table(run, "consensus"), load_table(run, "credits")


@pytest.mark.parametrize("vpps, fraction", [(5, 0.4), (2, 0.5)])
@pytest.mark.parametrize("behaviour", ["silent", "crash"])
def test_the_main_chain_commits_every_round_once_credit_moves_faulty_vmcs_out(
        tmp_path, vpps, fraction, behaviour):
    _, _, consensus, credits = _run(
        tmp_path, rounds=16, topology={"vpps": vpps, "nodes_per_vpp": 5},
        consensus={"side_committee_min": 1},
        faults={"byzantine_fraction": fraction, "where": "main", "behaviours": [behaviour]})
    main = consensus[consensus.chain == "main"].sort_values("round")
    first = int(main[main.committed]["round"].min())
    # beyond f, absence costs 8 a round: a crashed VMC is ineligible after one failed round
    # and suspended (out of even a degraded committee) after five
    assert first <= 5 and main[main["round"] >= first].committed.all()
    # no honest VMC pays for the faulty ones: its credit never falls
    vmcs = credits[(credits.chain == "main") & credits.node.str.endswith("/vmc")]
    assert (vmcs[vmcs.behaviour == "honest"].delta >= 0).all()


@pytest.mark.parametrize("behaviour", EVERY_BEHAVIOUR)
def test_every_behaviour_leaves_the_committee_for_good_and_the_honest_do_not_pay(
        tmp_path, behaviour):
    # (A slow node is not provably faulty: credit unseats it only while the honest members
    # make a quorum without it. Seed 5 seats 4 delay nodes of 7 at round 0; with whole-block
    # proposals under the calibrated timeout they signed every certificate and kept their
    # seats -- the committee issue's territory -- with digests the round outruns them.)
    cfg, run, _, credits = _run(tmp_path, faults={"byzantine_fraction": 0.3,
                                                  "behaviours": [behaviour]})
    side = credits[credits.chain == "vpp-0"]
    faulty = side[side.behaviour == behaviour]
    last = side[side["round"] == side["round"].max()]
    if behaviour == "false-audit":
        # a supervisor (never a candidate) whose accusations fail keeps paying its stake
        auditors = last[(last.behaviour == behaviour) & (last.role == "supervisory")]
        assert len(auditors) and auditors.status.isin(["suspended", "banned"]).all()
    elif behaviour == "double-spend":
        # only an overdraft the chain shows tells a double-spender from an honest trader: from
        # then on it holds no seat for offence_rounds
        trades = load_table(run, "trades")
        over = trades[trades.reason.str.startswith("overdraft")]
        caught = {}
        for rnd, reason, buyer, seller in zip(over["round"], over.reason, over.buyer, over.seller):
            who = seller if reason == "overdraft-energy" else buyer
            caught.setdefault(who, int(rnd))
        assert caught
        for node, rnd in caught.items():
            barred = faulty[(faulty.node == node) & (faulty["round"] > rnd)
                            & (faulty["round"] <= rnd + cfg.credit.offence_rounds)]
            assert not barred.in_committee.astype(bool).any(), node
    else:
        # no faulty node holds a seat after round 15
        late = faulty[(faulty["round"] >= 15) & faulty.in_committee.astype(bool)]
        assert late.empty, late[["round", "node", "credit", "status"]].head()
    # ... and no honest candidate that took part lost eligibility because of them: an honest
    # node's credit only ever falls by idling (no signature on the chain for idle_rounds)
    honest = side[(side.behaviour == "honest") & (side.role != "supervisory")]
    falls = honest[honest.delta < 0]
    assert (falls.delta >= -cfg.credit.idle_decay).all() and not falls.in_committee.any()


def test_a_slow_primary_is_replaced_and_blamed_where_a_fixed_timeout_pays_it(tmp_path):
    """A primary 200 ms late on a ~60 ms round: under the old fixed 500 ms timeout it leads
    whole rounds and is paid for them; under the calibrated timeout (twice the round's normal
    case, shortened towards twice the recent rounds) it is replaced by a view change and
    blamed. Seed 7 at 20 %: delay nodes never hold more than f seats, and one leads."""
    faults = {"byzantine_fraction": 0.2, "behaviours": ["delay"]}
    cfg, _, consensus, credits = _run(tmp_path, rounds=24, faults=faults,
                                      experiment={"seed": 7})
    _, _, fixed, fixed_credits = _run(tmp_path / "fixed", rounds=24, faults=faults,
                                      experiment={"seed": 7},
                                      consensus={"view_timeout_ms": 500,
                                                 "accountability_factor": 0})
    delay = set(credits[credits.behaviour == "delay"].node)
    assert delay == set(fixed_credits[fixed_credits.behaviour == "delay"].node)
    side, old = consensus[consensus.chain == "vpp-0"], fixed[fixed.chain == "vpp-0"]
    assert (side.byzantine_in_committee <= side.f).all()
    # the fixed timeout: slow primaries decide rounds in their own view and nobody blames them
    paid = old[old.primary.isin(delay)]
    assert len(paid) and (paid.views == 1).all()
    penalty = cfg.credit.primary_timeout_penalty
    assert not (fixed_credits[fixed_credits.node.isin(delay)].delta <= -penalty).any()
    # calibrated: no slow primary decides a round; the one that led is blamed for its view
    assert not side.primary.isin(delay).any()
    blamed = credits[(credits.chain == "vpp-0") & credits.node.isin(delay)
                     & (credits.delta <= -penalty)]
    assert len(blamed) >= 1
    assert (side[side["round"].isin(blamed["round"])].views >= 2).all()


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), where=st.sampled_from(["side", "main", "both"]),
       behaviours=st.lists(st.sampled_from(REPLAYED), min_size=1, max_size=4, unique=True),
       fraction=st.sampled_from([0.1, 0.2, 0.3]),
       algorithm=st.sampled_from(["dce-pbft", "pbft", "random-committee"]))
def test_credit_replayed_from_the_blocks_equals_the_table_and_honest_work_never_costs(
        tmp_path_factory, seed, where, behaviours, fraction, algorithm):
    cfg = build_config({
        "experiment": {"seed": seed, "rounds": 8, "runtime": "local"},
        "topology": {"vpps": 3, "nodes_per_vpp": 10},
        "consensus": {"algorithm": algorithm},
        "faults": {"byzantine_fraction": fraction, "where": where, "behaviours": behaviours},
    })
    run = run_local(cfg, tmp_path_factory.mktemp("replay"))
    report = verify_run(run)  # replays every credits row from the chain, or fails naming it
    assert report.credit_rows > 0
    credits, consensus = load_table(run, "credits"), load_table(run, "consensus")
    # in a round with at most f consensus-faulty members, a seated honest node that did what
    # was due (voted, led, changed view) never loses credit; beyond f (a committee of 2 has
    # f = 0) a faulty member's late view change can blame an honest primary that waited for it
    within = consensus[consensus.byzantine_in_committee <= consensus.f][["round", "chain"]]
    honest = credits[credits.behaviour == "honest"].merge(within, on=["round", "chain"])
    seated = honest[honest.in_committee.astype(bool)]
    assert (seated.delta >= 0).all(), seated[seated.delta < 0][["round", "chain", "node"]]


def test_the_credit_study_runs_in_its_reduced_form_and_shows_separation(tmp_path):
    """experiments/credit_study.py (docs/results.md) in a reduced form, so it never rots: its
    table must show DCE-PBFT moving forgers out where the random committee keeps them."""
    import subprocess
    import sys
    from pathlib import Path

    import pandas as pd

    script = Path(__file__).parent.parent / "experiments" / "credit_study.py"
    subprocess.run([sys.executable, str(script), "--quick", "--behaviours", "forge",
                    "--where", "side", "--seeds", "1", "--jobs", "1", "--out", str(tmp_path)],
                   check=True, capture_output=True, timeout=600)
    table = pd.read_csv(tmp_path / "credit_study.csv").set_index(["fraction", "algorithm"])
    for fraction in (0.1, 0.3, 0.5):
        assert table.loc[(fraction, "dce-pbft"), "seats_late"] == 0
        assert table.loc[(fraction, "random-committee"), "seats_late"] > 0
    assert (tmp_path / "credit_study.png").stat().st_size > 10_000
