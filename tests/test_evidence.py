"""Proofs of misbehaviour, built by hand and judged by the pure checker alone (issue 14,
item 2): each real proof convicts its signer; each false one -- forged, mismatched, of
different views or kinds, the same digest twice, another's block -- convicts nobody."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import pytest

from consensus_harness import identities, make_instance, trades_for
from mlts_ray.analysis.load import load_table
from mlts_ray.analysis.run_files import VerifyError
from mlts_ray.analysis.verify import verify_run
from mlts_ray.consensus.evidence import (
    DoubleVote,
    Equivocation,
    InvalidProposal,
    decode_proof,
    offender,
)
from mlts_ray.consensus.messages import Vote
from mlts_ray.ledger.block import Block, BlockKind
from mlts_ray.ledger.crypto import SigKind

INST = make_instance(4)
IDS = identities(4)
PRIMARY = IDS[INST.primary(0)]
OTHER = IDS[1]
D1, D2 = bytes([1]) * 32, bytes([2]) * 32


def vote(kind, digest, who=OTHER, view=0, height=INST.height):
    return Vote(kind, INST.chain, height, view, digest, who.name).signed(who)


def test_two_pre_prepares_for_one_view_convict_the_primary():
    p = Equivocation(vote(SigKind.PRE_PREPARE, D1, PRIMARY), vote(SigKind.PRE_PREPARE, D2, PRIMARY))
    assert offender(p, INST.keys) == PRIMARY.name


@pytest.mark.parametrize("kind", [SigKind.PREPARE, SigKind.COMMIT])
def test_two_votes_of_one_phase_and_view_convict_the_voter(kind):
    assert offender(DoubleVote(vote(kind, D1), vote(kind, D2)), INST.keys) == OTHER.name


FALSE = {
    "the same digest twice": lambda: DoubleVote(vote(SigKind.COMMIT, D1), vote(SigKind.COMMIT, D1)),
    "two views": lambda: DoubleVote(vote(SigKind.COMMIT, D1), vote(SigKind.COMMIT, D2, view=1)),
    "two phases": lambda: DoubleVote(vote(SigKind.PREPARE, D1), vote(SigKind.COMMIT, D2)),
    "two heights": lambda: DoubleVote(vote(SigKind.COMMIT, D1), vote(SigKind.COMMIT, D2, height=9)),
    "two signers": lambda: DoubleVote(vote(SigKind.COMMIT, D1), vote(SigKind.COMMIT, D2, IDS[2])),
    "one signature forged": lambda: DoubleVote(
        vote(SigKind.COMMIT, D1), replace(vote(SigKind.COMMIT, D2), sig=bytes(64))),
    "signed by someone else under the name": lambda: DoubleVote(
        vote(SigKind.COMMIT, D1),
        Vote(SigKind.COMMIT, INST.chain, INST.height, 0, D2, OTHER.name).signed(IDS[3])),
    "votes offered as an equivocation": lambda: Equivocation(
        vote(SigKind.PREPARE, D1), vote(SigKind.PREPARE, D2)),
    "pre-prepares offered as a double vote": lambda: DoubleVote(
        vote(SigKind.PRE_PREPARE, D1, PRIMARY), vote(SigKind.PRE_PREPARE, D2, PRIMARY)),
    "not votes at all": lambda: DoubleVote(b"x", b"y"),
    "a valid block": lambda: _proposal(valid=True),
    "a block that is not the signed one": lambda: _proposal(valid=False, mismatch=True),
}


def _proposal(valid: bool, mismatch: bool = False) -> InvalidProposal:
    height = INST.height if valid else INST.height + 5
    block = Block.create(PRIMARY, chain=INST.chain, height=height, kind=BlockKind.SIDE,
                         round=INST.round, prev_hash=INST.prev_hash, txs=trades_for(4))
    digest = D1 if mismatch else block.hash
    return InvalidProposal(vote(SigKind.PRE_PREPARE, digest, PRIMARY), block.encode())


@pytest.mark.parametrize("case", sorted(FALSE))
def test_a_false_proof_convicts_nobody(case):
    assert offender(FALSE[case](), INST.keys, INST) is None


def test_a_signed_proposal_of_an_invalid_block_convicts_the_primary():
    assert offender(_proposal(valid=False), INST.keys, INST) == PRIMARY.name
    assert offender(_proposal(valid=False), INST.keys) is None  # judged against its instance


def test_a_run_bans_only_what_a_proof_convicts():
    """Equivocating primaries are banned from their proofs, every round; nobody else is (a
    silent or forging node loses credit, but no proof exists against it)."""
    from mlts_ray.config import build_config
    from mlts_ray.runtime.rounds import Rounds

    cfg = build_config({
        "experiment": {"seed": 2, "rounds": 8, "runtime": "local"},
        "topology": {"vpps": 2, "nodes_per_vpp": 12},
        "consensus": {"algorithm": "pbft", "pbft_primary": "rotate"},
        "faults": {"byzantine_fraction": 0.25, "behaviours": ["equivocate", "silent", "forge"]},
    })
    rounds = Rounds.local(cfg)
    convicted = set()
    for rnd in range(8):
        rounds.rows(rnd)
        for chain in rounds.sim.sides.values():
            labels = rounds.collector.labels[chain.chain]
            convicted |= {(n, labels[n]) for n in chain.facts.banned}
    assert convicted and {b for _, b in convicted} == {"equivocate"}


# --- evidence transactions on the chain --------------------------------------------------------

@pytest.fixture(scope="module")
def equivocating_run(tmp_path_factory):
    from mlts_ray.config import build_config
    from mlts_ray.runtime.local import run_local

    cfg = build_config({
        "experiment": {"seed": 7, "rounds": 8, "runtime": "local"},
        "topology": {"vpps": 3, "nodes_per_vpp": 10},
        "consensus": {"algorithm": "pbft", "pbft_primary": "rotate"},
        "faults": {"byzantine_fraction": 0.3, "where": "both", "behaviours": ["equivocate"]},
    })
    return cfg, run_local(cfg, tmp_path_factory.mktemp("ev"))


def _blocks(run):
    return [Block.decode(raw) for raw in load_table(run, "blocks").payload]


def _proofs(block):
    """The proofs in a block's round records (consensus.conduct.RoundRecord)."""
    from mlts_ray.analysis.certificates import records_of
    return [p for record in records_of(block) for p in record.proofs]


def test_proofs_go_on_the_chain_once_and_every_one_convicts_a_banned_equivocator(
        equivocating_run):
    cfg, run = equivocating_run
    from mlts_ray.ledger.crypto import DerivedKeyRing

    credits = load_table(run, "credits")
    keys = DerivedKeyRing(cfg.experiment.seed)
    convicted = [offender(decode_proof(raw), keys) for b in _blocks(run) for raw in _proofs(b)]
    assert convicted and None not in convicted
    assert len(convicted) == len(set(convicted))  # each offender's proof goes on once
    behaviour = dict(zip(credits.node, credits.behaviour, strict=False))
    assert {behaviour[n] for n in convicted} == {"equivocate"}
    assert verify_run(run).evidence == len(convicted)


def test_verify_refutes_a_false_proof_and_an_unbanned_offender(equivocating_run):
    from mlts_ray.analysis.committees import check_committees
    from mlts_ray.analysis.evidence_check import check_evidence
    from mlts_ray.ledger.crypto import DerivedKeyRing

    cfg, run = equivocating_run
    keys = DerivedKeyRing(cfg.experiment.seed)
    tables = {t: load_table(run, t) for t in ("blocks", "credits")}
    made = {(b.header.chain, b.header.round): b for b in _blocks(run)
            if b.header.kind != BlockKind.COLLABORATIVE}
    committees = check_committees(cfg, tables["credits"], made, {})
    from mlts_ray.consensus.conduct import RoundRecord

    key, block = next((k, b) for k, b in sorted(made.items()) if _proofs(b))
    i, record = next((i, r) for i, raw in enumerate(block.evidence)
                     if (r := RoundRecord.decode(raw)).proofs)
    proof = decode_proof(record.proofs[0])
    same = dataclasses.replace(proof, b=proof.a)  # one statement twice proves nothing
    bad = dataclasses.replace(record, proofs=(same.encode(),)).encode()
    forged = {**made, key: dataclasses.replace(
        block, evidence=block.evidence[:i] + (bad,) + block.evidence[i + 1:])}
    with pytest.raises(VerifyError, match="convicts nobody"):
        check_evidence(cfg, forged, tables["credits"], committees, keys)
    who = offender(proof, keys)
    credits = tables["credits"].copy()
    credits.loc[credits.node == who, "status"] = "active"
    with pytest.raises(VerifyError, match=f"convicts {who}, who is not banned"):
        check_evidence(cfg, made, credits, committees, keys)
