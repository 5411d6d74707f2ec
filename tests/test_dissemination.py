"""DCE-PBFT's certificate on its way to the observers (issue 34, item 5): each dissemination
mode's copies in closed form, a withholding sender repaired by the observers' fetches within
a bound derived from the instance, and fetches that never ask the same member twice running."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from consensus_harness import NIC_BPS, make_instance, run_instance, trades_for
from mlts_ray.consensus.dissemination import MODES, depth, from_member
from mlts_ray.net.network import tx_us

N, K = 13, 4  # nine observers; f = 1


def _inst(mode: str, client: int = 0, **changes):
    return replace(make_instance(N, members=range(K), client=client), dissemination=mode,
                   fanout=2, seed=3, **changes)


def _certificates(run) -> list[tuple[int, int]]:
    return [(s, d) for s, d, _ in run.sent_by_phase().get("certificate", [])]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("client", [0, N - 1])  # the client on the committee, or an observer
def test_every_observer_gets_the_certificate_without_a_fetch(mode, client):
    inst = _inst(mode, client)
    run = run_instance(inst, trades_for(N), start_all=True)  # observers arm their fetch timers
    assert sorted(run.committed) == list(range(N)) and len(run.digests()) == 1
    assert "fetch" not in run.counts
    sent = _certificates(run)
    got = Counter(d for _, d in sent)
    assert set(got) == set(inst.observers)
    primary = inst.primary(0)
    if mode == "primary":
        assert sorted(sent) == [(primary, o) for o in inst.observers]
    elif mode == "committee":  # each member its share: observer j from member j mod k
        assert sorted(sent) == sorted((inst.members[j % K], o)
                                      for j, o in enumerate(inst.observers))
    elif mode == "vmc":
        relay = [(inst.client, o) for o in inst.observers if o != inst.client]
        first = [] if client in inst.members else [(primary, inst.client)]
        assert sorted(sent) == sorted(first + relay)
    else:  # gossip: the primary and every observer forward to `fanout` observers once
        senders = Counter(s for s, _ in sent)
        assert senders[primary] == 2 and all(senders[o] == 2 for o in inst.observers)
        assert len(sent) == 2 * (1 + len(inst.observers))


def test_gossip_depth_is_the_fan_out_tree():
    assert [depth(n, 2) for n in (1, 2, 3, 8, 9, 26, 27)] == [1, 1, 2, 2, 3, 3, 4]
    assert depth(90, 4) == 3  # 5^3 = 125 >= 91


@pytest.mark.parametrize("mode", MODES)
def test_a_withholding_primary_leaves_no_honest_observer_without_the_block(mode):
    """The primary keeps the certificate (and its fetch answers) to itself. Observers fetch at
    F = ``first_fetch_us``; one that asked the withholder asks another member 2F later (never
    the same twice running), so every honest observer holds the block by
    B = 3F + two hops + every observer's copy through one member's uplink."""
    inst = _inst(mode, client=N - 1)
    trades = trades_for(N)
    run = run_instance(inst, trades, behaviours={inst.primary(0): "withhold"}, start_all=True)
    honest = list(inst.observers)
    assert set(honest) <= set(run.committed), mode
    cert = max(len(m.encode()) for items in run.sent.values() for _, _, m in items
               if m.phase == "certificate")
    slow_hop = 10_000 + 3 * 3_000  # the harness link at three sigma
    fetch = inst.first_fetch_us
    bound = 3 * fetch + 2 * slow_hop + len(inst.observers) * tx_us(cert, int(NIC_BPS)) + \
        tx_us(cert, int(NIC_BPS))
    when = {ob.node: ob.time_us for ob in run.sim.observations
            if type(ob.value).__name__ == "Committed"}
    assert max(when[o] for o in honest) <= bound, (mode, max(when[o] for o in honest), bound)
    withheld = set(from_member(inst, inst.primary(0), True))
    fetched = {s for s, _, _ in run.sent_by_phase().get("fetch", [])}
    if mode == "committee":
        assert fetched == withheld  # only the withholder's share had to fetch


def test_observers_never_ask_the_same_member_twice_running():
    """Every member withholds: observers fetch until they give up, each time from a member
    other than the one asked last."""
    inst = _inst("committee", max_view_changes=5)
    run = run_instance(inst, trades_for(N), behaviours=dict.fromkeys(inst.members, "withhold"),
                       start_all=True)
    for o in inst.observers:
        asked = [d for _, d, m in run.sent[o] if m.phase == "fetch"]
        assert len(asked) == inst.max_view_changes + 1
        assert set(asked) <= set(inst.members)
        assert all(a != b for a, b in zip(asked, asked[1:]))
    assert len({tuple(d for _, d, m in run.sent[o] if m.phase == "fetch")
                for o in inst.observers}) > 1  # drawn, not one fixed order
