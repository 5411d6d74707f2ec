"""A round's conduct from its record (consensus.conduct): blame needs f+1 signed statements,
a cleared view one that saw the proposal, absence no statement at all -- and the pruned record
the chain stores proves exactly what the full one does; the record's statements are what
members put on the wire, once each."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from mlts_ray.consensus.conduct import SentViewChanges, conduct, minimal, round_record
from mlts_ray.consensus.instance import TimeoutSeen
from mlts_ray.consensus.messages import ZERO_DIGEST, Timeout, ViewChange, Vote
from mlts_ray.ledger.crypto import DerivedKeyRing, SigKind
from mlts_ray.net.network import LinkModel
from mlts_ray.net.node import Ready
from mlts_ray.net.sim import ChainSim

KEYS = DerivedKeyRing(9)
CHAIN = "vpp-0"
SEEN = b"\x01" * 32


def _statement(sender, new_view, accepted, rnd=4):
    t = Timeout(CHAIN, 2, rnd, new_view, sender, SEEN if accepted else ZERO_DIGEST)
    root_sig = KEYS.identity(sender).sign_root(SigKind.VIEW_CHANGE, CHAIN, t.body())
    return dataclasses.replace(t, sig=root_sig)


def _commits(view, senders):
    return tuple(Vote(SigKind.COMMIT, CHAIN, 2, view, b"\x02" * 32, s) for s in senders)


MEMBERS = [f"vpp-0/n-{i:03d}" for i in range(4)]  # k = 4: f = 1, q = 3


def test_a_silent_primary_is_blamed_by_f_plus_1_and_the_absent_pay_in_a_failed_round():
    a, b, c, d = MEMBERS
    record = round_record(CHAIN, 4, [_statement(b, 1, False), _statement(c, 1, False)])
    out = conduct(MEMBERS, (), record, KEYS)
    assert out.timed_out == (a,) and out.missing == {a, d} and not out.decided


def test_one_member_that_saw_the_proposal_clears_the_primary():
    a, b, c, _ = MEMBERS
    record = round_record(CHAIN, 4, [_statement(b, 1, False), _statement(c, 1, True)])
    assert conduct(MEMBERS, (), record, KEYS).timed_out == ()


def test_f_statements_cannot_frame_and_a_forged_or_foreign_one_counts_for_nothing():
    a, b, c, d = MEMBERS
    alone = round_record(CHAIN, 4, [_statement(b, 1, False)])  # f = 1 liar
    assert conduct(MEMBERS, (), alone, KEYS).timed_out == ()
    forged = dataclasses.replace(_statement(c, 1, False), sig=bytes(64))
    other_round = _statement(d, 1, False, rnd=3)
    record = round_record(CHAIN, 4, [_statement(b, 1, False), forged])
    record = dataclasses.replace(record, statements=record.statements + (other_round,))
    out = conduct(MEMBERS, (), record, KEYS)
    assert out.timed_out == () and out.missing == {a, c, d}


def test_a_later_views_primary_is_blamed_only_once_q_asked_for_its_view():
    a, b, c, d = MEMBERS
    # view 1 (primary b) failed too, but only two members had asked for view 1: b could not
    # have proposed
    two = [_statement(c, 1, False), _statement(d, 1, False),
           _statement(c, 2, False), _statement(d, 2, False)]
    assert conduct(MEMBERS, (), round_record(CHAIN, 4, two), KEYS).timed_out == (a,)
    three = [*two, _statement(b, 1, False)]
    assert conduct(MEMBERS, (), round_record(CHAIN, 4, three), KEYS).timed_out == (a, b)


def test_a_decided_round_pays_its_signers_and_blames_only_views_before_the_decision():
    a, b, c, d = MEMBERS
    record = round_record(CHAIN, 4, [_statement(c, 1, False), _statement(d, 1, False),
                                     _statement(b, 2, False)])  # a late timer after deciding
    out = conduct(MEMBERS, _commits(1, [b, c, d]), record, KEYS)
    assert out.decided and out.primary == b and out.signers == {b, c, d}
    assert out.timed_out == (a,) and out.missing == frozenset() and out.views == 2


@settings(max_examples=150, deadline=None)
@given(k=st.integers(1, 7), decided_in=st.one_of(st.none(), st.integers(0, 3)),
       said=st.lists(st.tuples(st.integers(0, 6), st.integers(1, 4), st.booleans()),
                     max_size=30))
def test_the_pruned_record_proves_the_same_conduct(k, decided_in, said):
    members = [f"vpp-0/n-{i:03d}" for i in range(k)]
    statements = [_statement(members[i % k], v, acc) for i, v, acc in said]
    record = round_record(CHAIN, 4, statements)
    commits = () if decided_in is None else _commits(decided_in, members)
    full = conduct(members, commits, record, KEYS)
    pruned, proven = minimal(record, members, commits, KEYS)
    assert len(pruned.statements) <= len(record.statements)
    got = conduct(members, commits, pruned, KEYS)
    assert got == proven and dataclasses.replace(got, present=full.present) == full


def test_the_network_reports_each_members_view_change_once_as_it_leaves():
    """``SentViewChanges`` as the network's ``on_sent``: called once per message whatever its
    copies; each member's statement for a view reported once, at its departure; a
    non-member's and other messages never; a message a node does not send is not there."""
    def change(i, view):
        vc = ViewChange(CHAIN, 2, view, MEMBERS[i], None, round=4)
        sig = KEYS.identity(MEMBERS[i]).sign_root(SigKind.VIEW_CHANGE, CHAIN, vc.body())
        return dataclasses.replace(vc, sig=sig)

    class Other:  # any other message
        phase = "prepare"

        def encode(self):
            return b"x" * 40

    class Node:  # on the round's input: broadcast its view changes, each to all others
        def __init__(self, i, said):
            self.i, self.said = i, said

        def step(self, event, now_us):
            r = Ready(hold_us=7)
            if event == "go":
                for msg in self.said:
                    r.broadcast([j for j in range(4) if j != self.i], msg)
            return r

    a1, a1_again, a2 = change(0, 1), change(0, 1), change(0, 2)
    b1, d1 = change(1, 1), change(3, 1)
    calls = []
    report = SentViewChanges([0, 1, 2])  # node 3 is not a member
    sim = ChainSim(CHAIN, [Node(0, [a1, a1_again, a2]), Node(1, [b1, Other()]), Node(2, []),
                           Node(3, [d1])], LinkModel(1000.0, 0.0, 1), 1, 50, 150,
                   on_sent=lambda src, msg: calls.append((src, msg)) or report(src, msg))
    for i in range(4):
        sim.input(i, "go", 0)
    sim.run()
    assert len(calls) == 6  # six messages sent, 18 copies
    seen = [(ob.node, ob.time_us, ob.value) for ob in sim.observations
            if isinstance(ob.value, TimeoutSeen)]
    assert seen == [(0, 7, TimeoutSeen(a1.statement())), (0, 7, TimeoutSeen(a2.statement())),
                    (1, 7, TimeoutSeen(b1.statement()))]
