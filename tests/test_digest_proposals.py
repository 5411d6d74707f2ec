"""Proposals by digest (issue 34, item 2; Castro-Liskov): the client multicasts the trades in
its request, the pre-prepare carries the block's outline (signed header and a leaf hash per
trade), and a member that lacks a trade fetches it -- from the client, then from the primary.
Closed forms of what goes on the wire and scenarios with a lost request copy."""

from __future__ import annotations

from dataclasses import replace

import pytest

from consensus_harness import (
    DEFAULT_LINK,
    expected_pbft,
    make_instance,
    run_instance,
    trades_for,
)
from mlts_ray.consensus.messages import (
    DIGEST,
    NewView,
    PrePrepare,
    TradeFetch,
    Trades,
    ViewChange,
)
from mlts_ray.net.network import PartitionWindow

DATAGRAM = DEFAULT_LINK  # the harness link resends nothing: a dropped copy stays lost


def _pre_prepare_bytes(run) -> int:
    (size,) = {len(m.encode()) for _, _, m in run.sent_by_phase()["pre-prepare"]}
    return size


@pytest.mark.parametrize("n", [4, 10])
def test_an_outline_grows_by_one_digest_per_trade(n):
    """The outlined pre-prepare is the same few hundred bytes plus 32 per trade, whatever the
    trades weigh; the whole block carries every trade's bytes."""
    sizes, trade_bytes = {}, {}
    for count in (0, 3, 9):
        trades = trades_for(n, count) if count else ()
        digests = run_instance(make_instance(n, certify=False), trades)
        whole = run_instance(make_instance(n, certify=False, proposal="block"), trades)
        assert digests.counts == whole.counts == expected_pbft(n)
        assert digests.block() == whole.block()
        sizes[count] = (_pre_prepare_bytes(digests), _pre_prepare_bytes(whole))
        trade_bytes[count] = sum(len(t) for t in trades)
    for count in (3, 9):
        assert sizes[count][0] - sizes[0][0] == count * DIGEST
        assert sizes[count][1] - sizes[0][1] >= trade_bytes[count] > count * 200


def test_every_member_rebuilds_the_block_the_primary_signed():
    n = 7
    run = run_instance(make_instance(n, certify=False), trades_for(n, 5))
    assert sorted(run.committed) == list(range(n)) and len(run.digests()) == 1
    assert run.block().txs == run.trades
    outlines = [m for _, _, m in run.sent_by_phase()["pre-prepare"]]
    assert all(isinstance(m, PrePrepare) and m.outlined for m in outlines)
    assert "fetch" not in run.counts and "trades" not in run.counts


def _cut(windows, n=4, client=3):
    # members wait two slow hops (2 x (10 + 3 x 3) ms) for a request before they fetch, as a
    # configured chain's would; the harness has no link classes, so its view timeout sets it
    inst = replace(make_instance(n, client=client, certify=False), view_timeout_us=304_000)
    assert inst.fetch_wait_us == 38_000
    link = replace(DATAGRAM, partitions=tuple(windows))
    return run_instance(inst, trades_for(n, 3), link=link)


def test_a_member_whose_request_copy_was_lost_fetches_the_trades_from_the_client():
    """Node 2 is cut off for the first millisecond, when the client sent its request: the
    primary's outline names trades it lacks, so after waiting 38 ms for the request it asks
    the client once and commits in view 0."""
    run = _cut([PartitionWindow(0, 1_000, {2: 1})])
    fetches = [(s, d, m) for s, d, m in run.sent_by_phase()["fetch"]]
    assert [(s, d) for s, d, _ in fetches] == [(2, 3)]
    assert isinstance(fetches[0][2], TradeFetch) and len(fetches[0][2].hashes) == 3
    answers = run.sent_by_phase()["trades"]
    assert [(s, d) for s, d, _ in answers] == [(3, 2)]
    assert isinstance(answers[0][2], Trades) and len(answers[0][2].trades) == 3
    assert sorted(run.committed) == [0, 1, 2, 3] and len(run.digests()) == 1
    assert all(c.view == 0 for c in run.committed.values())
    base = expected_pbft(4)
    assert run.counts == {**base, "request": base["request"], "fetch": 1, "trades": 1}
    assert run.sim.phases["request"].dropped == 1


def test_then_from_the_primary_when_the_client_is_gone():
    """As above, but the client is cut off from everyone once its request left: node 2 asks
    the client (lost), then the primary, which answers from its block."""
    run = _cut([PartitionWindow(0, 1_000, {2: 1}), PartitionWindow(1_000, 10_000_000, {3: 1})])
    fetches = [(s, d) for s, d, _ in run.sent_by_phase()["fetch"]]
    assert fetches == [(2, 3), (2, 0)]
    assert [(s, d) for s, d, _ in run.sent_by_phase()["trades"]] == [(0, 2)]
    assert {0, 1, 2} <= set(run.committed) and len(run.digests()) == 1
    assert all(c.view == 0 for c in run.committed.values())


@pytest.mark.parametrize("proposal", ["digests", "block"])
def test_a_view_change_by_digest_carries_no_trade(proposal):
    """Every member prepared, then every link is cut until the view timer fires (datagrams: the
    commits are lost): the view change carries the prepared proofs and the new view re-proposes
    the prepared block. By digest no view change and no new view carries a trade's bytes (a
    prepared proof is the proposal's outline and q-1 prepares); with whole blocks every one
    does. Either way the new view decides the prepared block."""
    n = 4
    inst = make_instance(n, certify=False, proposal=proposal)
    trades = trades_for(n, 5)
    cut = PartitionWindow(18_000, 450_000, {i: i for i in range(n)})
    run = run_instance(inst, trades, link=replace(DATAGRAM, partitions=(cut,)))
    changes = [m for items in run.sent.values() for _, _, m in items
               if isinstance(m, (ViewChange, NewView))]
    assert sum(1 for m in changes if isinstance(m, ViewChange) and m.prepared) >= inst.q
    carrying = [m for m in changes if any(t in m.encode() for t in trades)]
    assert len(carrying) == (len(changes) if proposal == "block" else 0)
    assert sorted(run.committed) == list(range(n)) and len(run.digests()) == 1
    assert {c.view for c in run.committed.values()} == {1}
    assert run.block().txs == trades


@pytest.mark.parametrize("withheld", [False, True])
def test_a_member_missing_the_block_fetches_it_once_then_from_the_next_committer(withheld):
    """Node 2 is cut off for the first 20 ms (datagrams): it misses the request and the
    proposal, then sees q commits. It asks one committer for the block -- once -- and, when
    that one keeps it (``withhold``), the next one a fetch's wait later; it commits in view 0."""
    n = 4
    inst = replace(make_instance(n, client=3, certify=False), view_timeout_us=304_000)
    link = replace(DATAGRAM, partitions=(PartitionWindow(0, 20_000, {2: 1}),))
    run = run_instance(inst, trades_for(n, 3), link=link,
                       behaviours={3: "withhold"} if withheld else None)
    asked = [(t, d) for t, d, m in run.sent[2] if m.phase == "fetch"]
    assert [d for _, d in asked] == ([3, 0] if withheld else [3])
    if withheld:
        assert asked[1][0] - asked[0][0] >= 2 * inst.fetch_wait_us
    assert sorted(run.committed) == list(range(n)) and len(run.digests()) == 1
    assert run.committed[2].view == 0
