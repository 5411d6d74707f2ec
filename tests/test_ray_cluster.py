"""A real two-node Ray cluster on this machine (``ray.cluster_utils.Cluster``): the run spreads
its actors over both nodes and its tables equal the local runtime's."""

from __future__ import annotations

import json

import pytest

ray = pytest.importorskip("ray")
from ray_clusters import local_cluster  # noqa: E402
from run_checks import assert_same_tables  # noqa: E402

from mlts_ray.config import build_config  # noqa: E402
from mlts_ray.runtime.local import run_local  # noqa: E402
from mlts_ray.runtime.ray.run import run_ray  # noqa: E402

CONFIG = {
    "experiment": {"name": "cluster", "seed": 5, "rounds": 2, "nodes_per_actor": "auto"},
    "topology": {"vpps": 3, "nodes_per_vpp": 6, "grid_nodes": 1},
    "workload": {"cross_vpp_share": 0.5},
    "faults": {"byzantine_fraction": 0.3, "behaviours": ["silent", "forge"]},
}


@pytest.fixture(scope="module")
def cluster():
    with local_cluster(2) as c:
        yield c


def test_a_two_node_cluster_runs_on_both_nodes_with_the_local_tables(cluster, tmp_path):
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    cfg = build_config(CONFIG)
    run = run_ray(cfg, tmp_path / "ray")
    manifest = json.loads((run / "manifest.json").read_text())
    placed = manifest["ray"]["actors_per_node"]
    assert len(placed) == 2 and all(count >= 1 for count in placed.values()), placed
    local = run_local(build_config(CONFIG, ["experiment.runtime=local"]), tmp_path / "local")
    assert_same_tables(local, run)
