"""Auditors as strategies (issue 14, item 5): each supervisor picks its targets by its own
strategy, from what is held against nodes this round -- never from their behaviour labels --
and the judgement rests on the evidence alone."""

from __future__ import annotations

import random

from mlts_ray.analysis.load import load_table
from mlts_ray.config import build_config
from mlts_ray.population.registry import strategies_of
from mlts_ray.runtime.local import run_local

POOL = [f"n-{i:03d}" for i in range(1, 11)]
SUSPECTS = {"n-002", "n-007"}


def test_an_honest_auditor_audits_only_suspects_and_a_false_one_only_the_rest():
    honest = strategies_of("honest").auditor.targets("sup", POOL, SUSPECTS, 5, random.Random(1))
    false = strategies_of("false-audit").auditor.targets("sup", POOL, SUSPECTS, 5,
                                                         random.Random(1))
    assert set(honest) == SUSPECTS
    assert len(false) == 5 and not set(false) & SUSPECTS


def test_supervisors_with_a_faulty_consensus_role_audit_nobody():
    for behaviour in ("crash", "silent", "equivocate", "delay", "forge"):
        strategy = strategies_of(behaviour).auditor
        assert strategy.targets("sup", POOL, SUSPECTS, 5, random.Random(1)) == []


def test_in_a_run_false_audits_are_always_dismissed(tmp_path):
    cfg = build_config({
        "experiment": {"seed": 5, "rounds": 6, "runtime": "local"},
        "topology": {"vpps": 2, "nodes_per_vpp": 12, "supervisors_per_vpp": 2},
        "faults": {"byzantine_fraction": 0.4, "behaviours": ["false-audit", "forge", "silent"]},
    })
    run = run_local(cfg, tmp_path)
    audits, credits = load_table(run, "audits"), load_table(run, "credits")
    behaviour = dict(zip(credits.node, credits.behaviour, strict=False))
    by = audits.assign(auditor_behaviour=audits.auditor.map(behaviour))
    false = by[by.auditor_behaviour == "false-audit"]
    assert len(false) and (false.outcome == "dismissed").all()
    honest = by[by.auditor_behaviour == "honest"]
    assert (honest.outcome == "upheld").all()


def test_an_audit_is_a_signed_claim_the_round_record_carries(tmp_path):
    import dataclasses

    from mlts_ray.analysis.certificates import records_of
    from mlts_ray.analysis.load import load_table
    from mlts_ray.config import build_config
    from mlts_ray.consensus.audit import AuditClaim
    from mlts_ray.ledger.block import Block
    from mlts_ray.ledger.crypto import DerivedKeyRing
    from mlts_ray.runtime.local import run_local

    cfg = build_config({"experiment": {"seed": 2, "rounds": 4, "runtime": "local"},
                        "topology": {"vpps": 1, "nodes_per_vpp": 12},
                        "faults": {"byzantine_fraction": 0.3,
                                   "behaviours": ["false-audit", "forge"]}})
    run = run_local(cfg, tmp_path)
    keys = DerivedKeyRing(cfg.experiment.seed)
    claims = [AuditClaim.decode(raw) for payload in load_table(run, "blocks").payload
              for record in records_of(Block.decode(payload)) for raw in record.audits]
    audits = load_table(run, "audits")
    stored = audits[audits["round"] < audits["round"].max()]  # the last round's are pending
    assert claims and len(claims) >= len(stored)
    assert all(c.valid(keys) and AuditClaim.decode(c.encode()) == c for c in claims)
    assert not dataclasses.replace(claims[0], target="vpp-0/n-999").valid(keys)
