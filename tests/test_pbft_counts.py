"""Message counts of fault-free PBFT and DCE-PBFT instances against the closed forms of docs/architecture.md
section 5, the fault bound / quorum table, and the same counts through the config-driven
simulation (the ``messages`` table rows)."""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction

import pytest

from consensus_harness import (
    expected_dce,
    expected_pbft,
    make_instance,
    node_names,
    run_instance,
    trades_for,
)
from mlts_ray.config import build_config, side_committee_size
from mlts_ray.consensus.instance import fault_bound, quorum
from mlts_ray.consensus.messages import Certificate, PrePrepare, Request, Vote
from mlts_ray.ledger.crypto import SigKind
from mlts_ray.mlts.consensus_round import PHASES
from mlts_ray.runtime.rounds import Rounds

# --- fault bound and quorum -----------------------------------------------------------------------

# n -> (f, q), worked out by hand from f = floor((n-1)/3), q = ceil((n+f+1)/2).
TABLE = {
    1: (0, 1), 2: (0, 2), 3: (0, 2), 4: (1, 3), 5: (1, 4), 6: (1, 4), 7: (2, 5), 8: (2, 6),
    9: (2, 6), 10: (3, 7), 11: (3, 8), 12: (3, 8), 13: (4, 9), 100: (33, 67),
}


@pytest.mark.parametrize("n", sorted(TABLE))
def test_fault_bound_and_quorum_table(n):
    assert (fault_bound(n), quorum(n)) == TABLE[n]
    f = (n - 1) // 3
    assert fault_bound(n) == f
    assert quorum(n) == math.ceil(Fraction(n + f + 1, 2))


@pytest.mark.parametrize("f", range(0, 34))
def test_quorum_is_2f_plus_1_when_n_is_3f_plus_1(f):
    n = 3 * f + 1
    assert fault_bound(n) == f
    assert quorum(n) == 2 * f + 1


@pytest.mark.parametrize("n", range(1, 301))
def test_quorums_intersect_in_a_correct_node_and_are_reachable(n):
    f, q = fault_bound(n), quorum(n)
    assert 3 * f + 1 <= n < 3 * f + 4
    assert 2 * q - n >= f + 1  # two quorums share at least one correct member
    assert q <= n - f  # the correct members alone form a quorum (liveness)


# --- one instance, PBFT -----------------------------------------------------------------------------


def _check_bytes(run) -> None:
    """Every counted message was really sent and the byte count is exactly their encodings."""
    by_phase = run.sent_by_phase()
    assert set(by_phase) == set(run.sim.phases)
    # The driver would route a message to oneself through the network; nodes never send one.
    assert all(s != d for items in by_phase.values() for s, d, _ in items)
    for phase, stats in run.sim.phases.items():
        sizes = [len(msg.encode()) for _, _, msg in by_phase[phase]]
        assert stats.count == len(sizes)
        assert stats.dropped == 0
        # Equal-length names: every message of one phase has one size.
        assert len(set(sizes)) == 1, (phase, Counter(sizes))
        assert stats.bytes == stats.count * sizes[0] > 0


def _check_one_decision(run, n: int) -> None:
    assert sorted(run.committed) == list(range(n)), "every node commits"
    assert len(run.digests()) == 1, "one digest"
    block = run.block()
    assert block.header.height == 0 and block.header.chain == "vpp-0"
    assert tuple(block.txs) == run.trades, "the primary packs every valid trade"
    assert run.committed[run.inst.client] is not None
    assert [a.digest for a in run.answered] == [block.hash], "the client gets f+1 replies once"


@pytest.mark.parametrize("n", [4, 7, 10, 31])
def test_pbft_counts_match_closed_form(n):
    inst = make_instance(n, certify=False)
    run = run_instance(inst, trades_for(n))
    assert run.counts == {
        "request": n - 1,
        "pre-prepare": n - 1,
        "prepare": (n - 1) ** 2,
        "commit": n * (n - 1),
        "reply": n - 1,
    }
    assert run.counts == expected_pbft(n)
    assert "view-change" not in run.counts and "new-view" not in run.counts
    assert run.sim.delivered == sum(run.counts.values())
    _check_one_decision(run, n)
    _check_bytes(run)


@pytest.mark.parametrize("n, client", [(4, 3), (7, 5), (10, 9)])
def test_pbft_counts_do_not_depend_on_which_member_is_client(n, client):
    run = run_instance(make_instance(n, client=client, certify=False), trades_for(n))
    assert run.counts == expected_pbft(n)
    _check_one_decision(run, n)


def test_pbft_who_sends_what_to_whom():
    """Finer than the totals: the primary sends only pre-prepares (no prepare), every backup one
    prepare to each other member, every member one commit to each other member, and every member
    but the client one reply to the client."""
    n = 7
    run = run_instance(make_instance(n, certify=False), trades_for(n))
    primary = run.inst.primary(0)
    per = Counter()
    for sender, dst, msg in (x for items in run.sent_by_phase().values() for x in items):
        assert sender != dst, "nothing is sent to oneself"
        per[(msg.phase, sender, dst)] += 1
        if isinstance(msg, Vote):
            assert msg.sender == node_names(n)[sender]
    for s in range(n):
        for d in range(n):
            if s == d:
                continue
            assert per[("pre-prepare", s, d)] == (s == primary)
            assert per[("prepare", s, d)] == (s != primary)
            assert per[("commit", s, d)] == 1
            assert per[("request", s, d)] == (s == 0)
            assert per[("reply", s, d)] == (d == 0)
    kinds = {type(m) for items in run.sent.values() for _, _, m in items}
    assert kinds == {Request, PrePrepare, Vote}


@pytest.mark.parametrize("n, crashed", [(4, (2,)), (7, (3, 6)), (10, (1, 5, 9))])
def test_pbft_counts_with_up_to_f_crashed_backups(n, crashed):
    """c <= f crashed backups: the others still commit in view 0 without a view change; only the
    crashed nodes' own messages disappear from the counts (messages *to* them still count)."""
    assert len(crashed) <= fault_bound(n)
    c = len(crashed)
    run = run_instance(
        make_instance(n, certify=False), trades_for(n), behaviours=dict.fromkeys(crashed, "crash")
    )
    assert run.counts == {
        "request": n - 1,
        "pre-prepare": n - 1,
        "prepare": (n - 1 - c) * (n - 1),
        "commit": (n - c) * (n - 1),
        "reply": n - 1 - c,
    }
    assert sorted(run.committed) == [i for i in range(n) if i not in crashed]
    assert len(run.digests()) == 1
    assert all(cm.view == 0 for cm in run.committed.values())


# --- one instance, DCE-PBFT -------------------------------------------------------------------------

DCE_CASES = [(10, 4), (40, 4), (100, 10), (31, 31), (7, 2), (13, 1), (10, 10), (25, 7)]


@pytest.mark.parametrize(
    "n, k, client_inside",
    [(n, k, inside) for n, k in DCE_CASES for inside in (True, False) if inside or k < n],
)
def test_dce_counts_match_closed_form(n, k, client_inside):
    client = 0 if client_inside else n - 1
    inst = make_instance(n, members=range(k), client=client)
    assert (client in inst.members) == client_inside
    run = run_instance(inst, trades_for(n))
    expected = {
        "request": k - 1 if client_inside else k,
        "pre-prepare": k - 1,
        "prepare": (k - 1) ** 2,
        "commit": k * (k - 1),
        "reply": k - 1 if client_inside else k,
        "certificate": n - k,
    }
    assert run.counts == {p: c for p, c in expected.items() if c}
    assert run.counts == expected_dce(n, k, client_inside)
    _check_one_decision(run, n)
    _check_bytes(run)
    # Only the primary sends certificates, one to each observer, and observers send nothing
    # (but a client outside the committee sends its request).
    certs = run.sent_by_phase().get("certificate", [])
    assert sorted(d for _, d, _ in certs) == list(inst.observers)
    assert {s for s, _, _ in certs} <= {inst.primary(0)}
    for obs in inst.observers:
        sent_phases = {m.phase for _, _, m in run.sent[obs]}
        assert sent_phases == ({"request"} if obs == client else set())
    for _, _, cert in certs:
        assert isinstance(cert, Certificate)
        assert len(cert.commits) == inst.q
        assert {v.kind for v in cert.commits} == {SigKind.COMMIT}


def test_dce_committee_not_at_the_front():
    """Members need not be the lowest indices, nor listed in index order."""
    n, members = 12, (9, 2, 5, 11)
    inst = make_instance(n, members=members, client=5)
    run = run_instance(inst, trades_for(n))
    assert run.counts == expected_dce(n, 4, client_is_member=True)
    _check_one_decision(run, n)
    assert {s for s, _, _ in run.sent_by_phase()["pre-prepare"]} == {9}


@pytest.mark.parametrize("start_all", [False, True])
def test_start_on_every_node_sends_one_request(start_all):
    """``Start`` reaching non-client nodes changes nothing."""
    n, k = 10, 4
    for client, inside in ((0, True), (9, False)):
        run = run_instance(make_instance(n, range(k), client), trades_for(n), start_all=start_all)
        assert run.counts == expected_dce(n, k, inside)


# --- the config-driven path ---------------------------------------------------------------------

# seed 0 leaves the VMC off the side committee for these sizes; seed 6 puts it on.
SIM_CASES = [
    (n, algo, seed, vmc_in)
    for n in (10, 40)
    for algo, seed, vmc_in in (("pbft", 0, True), ("dce-pbft", 0, False), ("dce-pbft", 6, True))
]


@pytest.mark.parametrize("n, algo, seed, vmc_in", SIM_CASES)
def test_simulation_message_rows_match_closed_form(n, algo, seed, vmc_in):
    cfg = build_config({
        "experiment": {"seed": seed, "runtime": "local"},
        "topology": {"vpps": 1, "nodes_per_vpp": n},
        "consensus": {"algorithm": algo},
        "faults": {"byzantine_fraction": 0.0},
        # Closed forms count an unconstrained network's messages: on 20 Mbit/s residential
        # uplinks the PBFT primary's block reaches its last replicas after their commit quorum,
        # and they fetch it (see test_transport.py).
        "network": {"uplink_mbps": 10_000, "downlink_mbps": 10_000},
    })
    every = Rounds.local(cfg).rows(0)
    # The side chain vpp-0 only (the main chain has rows of its own in the same tables).
    rows = {t: [r for r in every[t] if r.get("chain") == "vpp-0"] for t in ("credits", "consensus", "messages")}
    credits = {r["node"]: r for r in rows["credits"]}
    assert len(credits) == n
    committee = {node for node, r in credits.items() if r["in_committee"]}
    k = n if algo == "pbft" else side_committee_size(cfg)
    assert len(committee) == k
    client_in = "vpp-0/vmc" in committee
    assert client_in == vmc_in, "committee selection changed: pick another seed for this case"

    (consensus,) = rows["consensus"]
    assert consensus["committed"] and consensus["views"] == 1
    assert consensus["committee_size"] == k and consensus["n_nodes"] == n
    assert not consensus["safety_violation"]

    messages = rows["messages"]
    assert [r["phase"] for r in messages] == [p for p in PHASES if p in {r["phase"] for r in messages}]
    counts = {r["phase"]: r["count"] for r in messages}
    expected = expected_pbft(n, client_in) if algo == "pbft" else expected_dce(n, k, client_in)
    assert counts == expected
    assert all(r["dropped"] == 0 and r["bytes"] > 0 for r in messages)
    assert consensus["messages"] == sum(counts.values()) == consensus["deliveries"]
    assert consensus["bytes"] == sum(r["bytes"] for r in messages)
    # Votes are small and all alike: bytes per prepare/commit/reply lie within one name length.
    for phase in ("prepare", "commit", "reply"):
        row = next((r for r in messages if r["phase"] == phase), None)
        if row is not None:
            per = row["bytes"] / row["count"]
            assert 100 < per < 200, (phase, per)


def test_simulation_side_committee_sizes_follow_design():
    """k = max(2, ceil(0.10 * N_v)) (docs/architecture.md section 3)."""
    for n, k in ((4, 2), (10, 2), (20, 2), (21, 3), (40, 4), (100, 10), (101, 11)):
        cfg = build_config({"topology": {"vpps": 1, "nodes_per_vpp": n}})
        assert side_committee_size(cfg) == k == max(2, math.ceil(Fraction(n, 10)))
