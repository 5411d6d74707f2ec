"""Network realism through whole runs (issue 13): reliable transport recovers from loss and
partitions, datagrams report what they lose, PBFT's primary is stable, the NIC queues are where
a smaller committee saves time, and committees are never empty."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from consensus_harness import make_instance, run_instance, trades_for
from mlts_ray.analysis.load import load_table
from mlts_ray.config import build_config, load_config
from mlts_ray.consensus.committee import dce_committee
from mlts_ray.runtime.rounds import Rounds
from mlts_ray.net.network import LinkModel, PartitionWindow
from mlts_ray.runtime.local import run_local

QUICKSTART = Path(__file__).parent.parent / "experiments" / "quickstart.toml"


def _consensus(cfg, tmp_path):
    return load_table(run_local(cfg, tmp_path), "consensus")


def test_the_loss_crash_command_completes_and_every_honest_node_holds_every_block(tmp_path):
    """The issue's command: at 20 % loss honest VMCs lost credit for votes the network
    dropped until the main committee was empty (ZeroDivisionError)."""
    cfg = load_config(QUICKSTART, ["experiment.runtime=local", "experiment.seed=1",
                                   "topology.nodes_per_vpp=10", "network.loss=0.2",
                                   "experiment.rounds=25"])
    consensus = _consensus(cfg, tmp_path)
    assert len(consensus) == 25 * 4
    assert consensus.committed.all()
    assert consensus.finality_ms.notna().all()  # every honest node of the chain holds it
    assert not consensus.committee_degraded.any()
    messages = load_table(tmp_path / consensus.run_id[0], "messages")
    assert messages[messages.phase == "retransmit"]["count"].sum() > 0


def test_a_committee_cut_apart_for_the_first_second_of_every_round_commits_after_it_heals(
        tmp_path):
    names = [f"vpp-0/n-{i:03d}" for i in range(1, 10)] + ["vpp-0/vmc"]
    every_node_alone = [[n] for n in names]
    cfg = build_config({
        "experiment": {"seed": 4, "rounds": 4, "runtime": "local"},
        "topology": {"vpps": 1, "nodes_per_vpp": 10},
        "faults": {"partitions": [{"start_ms": 0, "end_ms": 1000, "groups": every_node_alone}]},
    })
    side = _consensus(cfg, tmp_path).query("chain == 'vpp-0'")
    assert side.committed.all() and len(side) == 4
    # latency counts from the instance's start: the partition's second is in every round
    assert (side.latency_ms >= 1000).all() and (side.finality_ms >= 1000).all()
    assert side.finality_ms.notna().all()


def _datagram_run(loss: float, tmp_path):
    cfg = build_config({
        "experiment": {"seed": 3, "rounds": 10, "runtime": "local"},
        "topology": {"vpps": 2, "nodes_per_vpp": 30},
        "network": {"loss": loss, "transport": "datagram"},
    })
    run = run_local(cfg, tmp_path / str(loss))
    consensus, messages = load_table(run, "consensus"), load_table(run, "messages")
    assert len(consensus) == 10 * 3  # a row for every chain and round, committed or not
    assert "retransmit" not in set(messages.phase)
    assert (messages.dropped.sum() > 0) == (loss > 0)
    return consensus, messages.groupby("phase")["count"].sum()


def test_datagrams_at_five_percent_loss_recover_by_protocol(tmp_path):
    """No transport resends: the client resends its request, observers without a
    certificate fetch the block from the members, lagging members get the commit proof."""
    consensus, counts = _datagram_run(0.05, tmp_path)
    _, lossless = _datagram_run(0.0, tmp_path)
    assert consensus.committed.all() and consensus.finality_ms.notna().all()
    assert counts["fetch"] > lossless.get("fetch", 0)


def test_datagrams_at_heavy_loss_report_what_they_could_not_recover(tmp_path):
    from mlts_ray.analysis.summary import consensus_summary

    consensus, _ = _datagram_run(0.5, tmp_path)
    assert not consensus.committed.all()
    assert consensus.finality_ms.isna().any()
    summary = consensus_summary(consensus)
    assert (summary.fin_n <= summary.rounds).all() and (summary.fin_n < summary.rounds).any()
    # every round either has a latency or is counted as censored; a committed round without
    # one is among the censored
    assert (summary.lat_n + summary.censored == summary.rounds).all()
    assert (summary.censored >= summary.rounds - summary.committed - summary.beyond_f).all()


def test_a_client_whose_request_was_lost_resends_it_and_the_round_commits():
    """Datagrams, the client cut off while it sends: no member hears the request, so none
    arms a view timer -- the round used to end with no decision. The client resends."""
    inst = make_instance(4, client=3)
    cut = PartitionWindow(0, 100_000, {3: 1})
    run = run_instance(inst, trades_for(4), link=LinkModel(10_000, 0, 2_000, partitions=(cut,)))
    assert sorted(run.committed) == [0, 1, 2, 3]
    request = run.sim.phases["request"]
    assert (request.count, request.dropped) == (2 * 3, 3)


def test_observers_that_lost_the_certificate_fetch_the_block():
    inst = make_instance(10, members=range(4))
    cut = PartitionWindow(0, 400_000, {i: 1 for i in range(4, 10)})  # observers apart
    run = run_instance(inst, trades_for(10), link=LinkModel(10_000, 0, 2_000, partitions=(cut,)),
                       start_all=True)
    assert sorted(run.committed) == list(range(10)) and len(run.digests()) == 1
    assert run.sim.phases["fetch"].count == 6
    cert = run.sim.phases["certificate"]
    assert (cert.count, cert.dropped) == (6 + 6, 6)  # the lost ones, then the answers


def _pbft(pbft_primary: str, tmp_path):
    cfg = build_config({
        "experiment": {"seed": 5, "rounds": 10, "runtime": "local"},
        "topology": {"vpps": 2, "nodes_per_vpp": 8},
        "consensus": {"algorithm": "pbft", "pbft_primary": pbft_primary},
        "faults": {"byzantine_fraction": 0.25, "behaviours": ["silent"]},
    })
    return _consensus(cfg, tmp_path / pbft_primary).query("chain != 'main'")


def test_a_stable_pbft_primary_keeps_its_view_until_a_view_change_replaces_it(tmp_path):
    stable, rotate = _pbft("stable", tmp_path), _pbft("rotate", tmp_path)
    for _, rows in stable.groupby("chain"):
        rows = rows.sort_values("round")
        for prev, cur in zip(rows.itertuples(), rows.iloc[1:].itertuples(), strict=False):
            if prev.views == 1:  # no view change: the same primary leads the next round
                assert cur.primary == prev.primary
        # a silent primary is replaced once, never again: at most one view change per faulty
        assert (rows.views - 1).sum() <= 2
    for _, rows in rotate.groupby("chain"):
        assert rows.primary.nunique() >= 5  # round-robin, faulty or not
    assert stable.views.sum() < rotate.views.sum()
    assert stable.latency_ms.mean() < rotate.latency_ms.mean()


def _round(algorithm: str, uplink: float, **consensus) -> dict:
    cfg = build_config({
        "experiment": {"seed": 1, "rounds": 1, "runtime": "local"},
        "topology": {"vpps": 1, "nodes_per_vpp": 100},
        "consensus": {"algorithm": algorithm, **consensus},
        "network": {"uplink_mbps": uplink},
    })
    (row,) = [r for r in Rounds.local(cfg).rows(0)["consensus"] if r["chain"] == "vpp-0"]
    return row


def _uplink_cost(**consensus) -> tuple[float, float]:
    """What cutting the resources' uplink from 1 Gbit/s to 10 Mbit/s adds to a round's latency
    at N = 100, for PBFT and for DCE-PBFT."""
    fast = {a: _round(a, 1000.0, **consensus) for a in ("pbft", "dce-pbft")}
    slow = {a: _round(a, 10.0, **consensus) for a in ("pbft", "dce-pbft")}
    assert all(r["committed"] and r["views"] == 1 for r in (*fast.values(), *slow.values()))
    return tuple(slow[a]["latency_ms"] - fast[a]["latency_ms"] for a in ("pbft", "dce-pbft"))


def test_the_uplink_separated_the_protocols_only_while_pbft_carried_whole_blocks():
    """The old claim -- a PBFT primary sends its block 99 times through one residential uplink,
    a DCE-PBFT primary 9 times, so a slower uplink costs PBFT far more -- held for the protocol
    as previously shipped (whole blocks in the pre-prepare, the first node by name leading).
    With proposals by digest and the VMC leading, a member's votes are what its uplink
    carries, and PBFT's 99 of them cost it about what DCE-PBFT's 9 and its block cost it."""
    pbft, dce = _uplink_cost(proposal="block", pbft_primary="stable", view_timeout_ms=5000)
    assert pbft > 3 * dce > 0
    pbft, dce = _uplink_cost()
    assert 0 < pbft < 2 * dce and dce > 0


@settings(max_examples=200, deadline=None)
@given(credits=st.lists(st.floats(0, 100), min_size=1, max_size=30),
       k=st.integers(1, 30), eligible=st.sets(st.integers(0, 29)), usable=st.sets(st.integers(0, 29)),
       seed=st.integers(0, 1000), rnd=st.integers(0, 1000))
def test_a_committee_is_never_empty_and_says_when_it_is_degraded(credits, k, eligible, usable,
                                                                  seed, rnd):
    names = [f"n-{i:03d}" for i in range(len(credits))]
    credit = dict(zip(names, credits, strict=True))
    is_eligible = {names[i] for i in eligible if i < len(names)}
    is_usable = {names[i] for i in usable if i < len(names)} | is_eligible
    want = min(k, len(names))  # committee_size never asks for more nodes than the chain has
    c = dce_committee(names, want, credit, is_eligible.__contains__, is_usable.__contains__,
                      seed, rnd)
    assert len(c.members) == len(set(c.members)) >= 1
    # naive oracle: the eligible first by credit, then the usable, then (none usable) anyone
    n_eligible = len(is_eligible)
    assert c.degraded == (n_eligible < want)
    if n_eligible >= want:
        assert set(c.members) <= is_eligible and len(c.members) == want
        assert min(credit[m] for m in c.members) >= max(
            (credit[n] for n in is_eligible - set(c.members)), default=-1)
    elif is_usable:
        assert is_eligible <= set(c.members) <= is_usable
        assert len(c.members) == min(want, len(is_usable))
    else:
        assert len(c.members) == want


def test_a_node_that_missed_a_block_fetches_it_before_it_takes_part_in_the_next_height(tmp_path):
    """Datagrams; n-002 is cut off for all of round 0 and never holds block 0. In round 1 it
    asks a member for block 0 and its certificate, checks them, then votes; round 2 needs
    nothing."""
    cut = {"start_ms": 0, "end_ms": 60_000, "groups": [["vpp-0/n-002"]], "rounds": [0]}
    cfg = build_config({
        "experiment": {"seed": 2, "rounds": 3, "runtime": "local"},
        "topology": {"vpps": 1, "nodes_per_vpp": 7},
        "consensus": {"algorithm": "pbft"},
        "network": {"transport": "datagram"},
        "faults": {"partitions": [cut]},
    })
    run = run_local(cfg, tmp_path)
    consensus = load_table(run, "consensus").query("chain == 'vpp-0'").set_index("round")
    messages = load_table(run, "messages").query("chain == 'vpp-0'")
    by_round = messages.pivot_table(index="round", columns="phase", values="count",
                                    aggfunc="sum", fill_value=0)
    assert consensus.committed.all()
    assert consensus.finality_ms.isna()[0]  # n-002 never got block 0 in round 0
    assert by_round.loc[1, "fetch"] >= 1 and by_round.loc[1, "certificate"] >= 1
    assert consensus.finality_ms.notna()[1]  # ... it caught up and committed block 1
    assert by_round.loc[2].get("fetch", 0) == 0 and by_round.loc[2].get("certificate", 0) == 0
