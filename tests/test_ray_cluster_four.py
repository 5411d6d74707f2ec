"""A real four-node Ray cluster (``ray.cluster_utils.Cluster``, one CPU per node): every side
chain gets its own host, the placement groups spread them so the side chains run on different
Ray nodes (the main chain runs in the coordinator), the tables equal the local runtime's, and a side chain's host killed mid-run ends the
run naming that chain, with every finished round readable."""

from __future__ import annotations

import json

import pytest

ray = pytest.importorskip("ray")
from ray_clusters import local_cluster  # noqa: E402
from run_checks import assert_dead_host_ended, assert_same_tables  # noqa: E402

from mlts_ray.config import build_config  # noqa: E402
from mlts_ray.errors import RunError  # noqa: E402
from mlts_ray.runtime.local import run_local  # noqa: E402
from mlts_ray.runtime.ray.run import run_ray  # noqa: E402

# nodes_per_actor = nodes_per_vpp: one host per side chain (each whole, so the main chain runs in
# the coordinator); four hosts of 0.9 CPU on four 1-CPU nodes cannot share a node.
CONFIG = {
    "experiment": {"name": "cluster4", "seed": 11, "rounds": 3, "nodes_per_actor": 6},
    "topology": {"vpps": 4, "nodes_per_vpp": 6, "grid_nodes": 1},
    "workload": {"cross_vpp_share": 0.5},
    "faults": {"byzantine_fraction": 0.3, "where": "both", "behaviours": ["silent", "forge"]},
}


@pytest.fixture(scope="module")
def cluster():
    with local_cluster(4) as c:
        yield c


def test_side_chains_run_on_different_nodes_with_the_local_tables(cluster, tmp_path):
    assert len([n for n in ray.nodes() if n["Alive"]]) == 4
    run = run_ray(build_config(CONFIG), tmp_path / "ray")
    info = json.loads((run / "manifest.json").read_text())["ray"]
    on = info["chain_nodes"]
    sides = [on[f"vpp-{v}"] for v in range(4)]
    assert all(len(nodes) == 1 for nodes in sides), on  # a chain's one host is on one node
    assert len({nodes[0] for nodes in sides}) == 4, on  # ...and no two side chains share one
    assert info["side_state"] == "hosts" and len(on["main"]) == 1, info
    assert len(info["nodes"]) == 4, info
    local = run_local(build_config(CONFIG, ["experiment.runtime=local"]), tmp_path / "local")
    assert_same_tables(local, run)


def test_a_killed_side_chain_host_ends_the_run_naming_it(cluster, tmp_path):
    cfg = build_config(CONFIG, ["experiment.rounds=4"])

    def kill_vpp1_after_round_1(rnd, hosts):
        if rnd == 1:
            ray.kill(hosts[1])  # the host of vpp-1 (hosts are placed chain by chain)

    with pytest.raises(RunError) as err:
        run_ray(cfg, tmp_path, on_round=kill_vpp1_after_round_1)
    assert_dead_host_ended(err.value, "vpp-1", (2, 3), tmp_path)


def test_spread_side_chains_are_driven_across_the_cluster_with_the_local_tables(cluster,
                                                                              tmp_path):
    """Three nodes per actor: each side chain's two hosts share a placement group on one Ray
    node, its state on a chain driver that may be on another; the tables are still the local
    runtime's."""
    # three side chains and the main chain, two hosts each: four groups of 0.9 CPU, one a node
    cfg = build_config(CONFIG, ["experiment.nodes_per_actor=3", "experiment.rounds=2",
                                "topology.vpps=3"])
    run = run_ray(cfg, tmp_path / "ray")
    info = json.loads((run / "manifest.json").read_text())["ray"]
    assert info["side_state"] == "drivers" and info["drivers"] == 3, info
    on = info["chain_nodes"]
    assert all(len(on[f"vpp-{v}"]) == 1 for v in range(3)), on  # PACK: one node per chain
    assert len({on[f"vpp-{v}"][0] for v in range(3)}) == 3, on
    assert len(info["nodes"]) >= 2, info
    local = run_local(build_config(cfg.model_dump(mode="json"), ["experiment.runtime=local"]),
                      tmp_path / "local")
    assert_same_tables(local, run)


def test_hosts_no_node_can_take_end_the_run_naming_them_instead_of_waiting(cluster, tmp_path,
                                                                          monkeypatch):
    """Four side chains and the main chain spread, two hosts each: five groups of 0.72 CPU,
    each needing a 1-CPU node of its own, on four nodes. Ray would leave the fifth pending
    for ever; the run ends, before any round, naming it."""
    monkeypatch.setenv("MLTS_RAY_TIMEOUT_S", "1")
    cfg = build_config(CONFIG, ["experiment.nodes_per_actor=3"])
    with pytest.raises(RunError) as err:
        run_ray(cfg, tmp_path)
    assert err.value.subject == "experiment.nodes_per_actor", err.value
    assert "no Ray node took the hosts of" in err.value.why and "= 0.72 CPU" in err.value.why
    (run,) = tmp_path.iterdir()
    assert json.loads((run / "manifest.json").read_text())["status"] == "failed"
    assert ray.util.placement_group_table() == {} or all(
        g["state"] == "REMOVED" for g in ray.util.placement_group_table().values())
