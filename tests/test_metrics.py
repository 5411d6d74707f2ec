"""Metrics that cannot hide (issue 34, item 7): every chain-round says whether its committee
held more than f faulty members (``committed_beyond_f``), checked against a count made
independently from the credits table's seats; summaries count such rounds apart from clean
commits and say how many rounds each mean covers and leaves out."""

from __future__ import annotations

from mlts_ray.analysis.load import load_table
from mlts_ray.analysis.summary import consensus_summary
from mlts_ray.config import build_config
from mlts_ray.runtime.local import run_local


def test_committed_beyond_f_is_set_exactly_when_faulty_seats_exceed_f(tmp_path):
    # 40 % silent nodes on small committees (k = 4, f = 1): many rounds seat two or more
    cfg = build_config({
        "experiment": {"seed": 11, "rounds": 12, "runtime": "local"},
        "topology": {"vpps": 3, "nodes_per_vpp": 12},
        "consensus": {"algorithm": "random-committee", "side_committee_min": 4},
        "faults": {"byzantine_fraction": 0.4, "behaviours": ["double-spend", "abandon"]},
    })
    run = run_local(cfg, tmp_path)
    consensus, credits = load_table(run, "consensus"), load_table(run, "credits")
    seated = credits[credits.in_committee & (credits.behaviour != "honest")]
    faulty_seats = seated.groupby(["chain", "round"]).size()
    rows = consensus.set_index(["chain", "round"])
    seats = faulty_seats.reindex(rows.index, fill_value=0)
    expected = rows.committed & (seats > rows.f)
    assert (rows.committed_beyond_f == expected).all()
    assert expected.sum() >= 3 and (~expected & rows.committed).sum() >= 3  # both kinds occur
    summary = consensus_summary(consensus).set_index("chain")
    per_chain = consensus.groupby("chain")
    assert (summary.beyond_f == per_chain.committed_beyond_f.sum()).all()
    assert (summary.committed + summary.beyond_f == per_chain.committed.sum()).all()
    assert (summary.lat_n + summary.censored == summary.rounds).all()
    assert {"k", "f", "views"} <= set(summary.columns)
