"""What the chain commits to holds over seeds, algorithms and behaviour mixes (issue 14): every
certificate checks, every credit_root matches the credits table, every committee is the one its
credit state prescribes -- on runs with view changes, bans, suspensions and degraded rounds."""

from __future__ import annotations

import pytest

from mlts_ray.analysis.verify import verify_run
from mlts_ray.config import build_config
from mlts_ray.runtime.local import run_local

MIXES = {
    "consensus": ["silent", "equivocate", "delay", "forge"],
    "traders": ["forge", "abandon", "double-spend", "replay"],
    "audits": ["false-audit", "silent", "crash"],
}


@pytest.mark.parametrize("algorithm", ["dce-pbft", "pbft", "random-committee"])
@pytest.mark.parametrize("mix", sorted(MIXES))
@pytest.mark.parametrize("seed", [1, 8])
def test_every_commitment_verifies(algorithm, mix, seed, tmp_path):
    cfg = build_config({
        "experiment": {"seed": seed, "rounds": 6, "runtime": "local"},
        "topology": {"vpps": 2, "nodes_per_vpp": 9, "grid_nodes": 1},
        "consensus": {"algorithm": algorithm, "side_committee_min": 4},
        "workload": {"cross_vpp_share": 0.5},
        "network": {"loss": 0.05},
        "faults": {"byzantine_fraction": 0.34, "where": "both", "behaviours": MIXES[mix]},
    })
    report = verify_run(run_local(cfg, tmp_path))
    assert report.committees == 6 * 3
    assert report.credit_roots >= 1 and report.certificates >= report.credit_roots
