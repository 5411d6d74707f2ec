"""Partitions on the simulated network's timeline (``[[faults.partitions]]``)."""

from __future__ import annotations

import pytest

from mlts_ray.config import build_config
from mlts_ray.errors import ConfigError
from mlts_ray.runtime.rounds import Rounds


def _side(cfg, rnd_count):
    rounds = Rounds.local(cfg)
    rows = []
    for rnd in range(rnd_count):
        rows += [r for r in rounds.rows(rnd)["consensus"] if r["chain"] == "vpp-0"]
    return rows


def _cfg(partitions, transport="reliable"):
    return build_config({
        "experiment": {"seed": 2, "runtime": "local"},
        "topology": {"vpps": 1, "nodes_per_vpp": 7},
        # a residential primary (not the client): cutting it off leaves the request with the rest
        "consensus": {"algorithm": "pbft", "pbft_primary": "stable"},
        "network": {"transport": transport},
        "faults": {"partitions": partitions},
    })


def test_a_partition_isolating_the_primary_forces_a_view_change_then_heals():
    free = _side(_cfg([]), 1)[0]
    primary = free["primary"]
    cut = _side(_cfg([{"start_ms": 0, "end_ms": 900, "groups": [[primary]], "rounds": [0]}]), 2)
    assert free["views"] == 1
    assert cut[0]["committed"] and cut[0]["views"] >= 2 and cut[0]["primary"] != primary
    # The cut-off primary never got the request, so the first proposal is the new primary's,
    # after a view timeout longer than a whole fault-free round; latency_ms counts from the
    # instance's start (docs/architecture.md section 8), the wait included.
    assert cut[0]["proposed_ms"] > free["latency_ms"]
    assert cut[0]["latency_ms"] > cut[0]["proposed_ms"] + 0.5 * free["latency_ms"]
    assert cut[1]["views"] == 1  # round 1 is not in the partition's rounds


def test_a_minority_partition_cannot_stop_the_majority():
    names = [f"vpp-0/n-00{i}" for i in (1, 2)]
    rows = _side(_cfg([{"start_ms": 0, "end_ms": 10_000, "groups": [names]}]), 2)
    assert all(r["committed"] for r in rows)
    assert all(r["latency_ms"] < 10_000 for r in rows)  # the majority did not wait
    # reliable transport: the cut-off two get the block once the partition heals
    assert all(r["finality_ms"] >= 10_000 for r in rows)


def test_with_datagrams_the_cut_off_nodes_never_hear_of_the_block():
    names = [f"vpp-0/n-00{i}" for i in (1, 2)]
    rows = _side(_cfg([{"start_ms": 0, "end_ms": 10_000, "groups": [names]}], "datagram"), 2)
    assert all(r["committed"] for r in rows)
    assert all(r["finality_ms"] is None for r in rows)


def test_partition_groups_must_name_real_nodes():
    with pytest.raises(ConfigError) as err:
        Rounds.local(_cfg([{"start_ms": 0, "end_ms": 10, "groups": [["vpp-9/n-001"]]}]))
    assert err.value.subject == "faults.partitions[0].groups[0]"
