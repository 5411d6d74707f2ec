"""Hostile configs and flags through the CLI: each is refused with exit 2 naming the key, no
traceback, nothing left in ``--out``; and the runs that used to end in an internal error now run
(issue 12, item 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlts_ray.analysis.load import load_table
from mlts_ray.cli import main
from mlts_ray.config import load_config
from mlts_ray.runtime.local import run_local

QUICKSTART = Path(__file__).parent.parent / "experiments" / "quickstart.toml"

HOSTILE = [
    (["network.intra_latency_ms=inf"], "network.intra_latency_ms"),
    (["network.inter_jitter_ms=nan"], "network.inter_jitter_ms"),
    (["consensus.view_timeout_ms=inf"], "consensus.view_timeout_ms"),
    (["consensus.view_timeout_ms=1e300"], "consensus.view_timeout_ms"),
    (["faults.delay_ms=inf"], "faults.delay_ms"),
    (["network.uplink_mbps=1e308"], "network.uplink_mbps"),
    (["network.vmc_downlink_mbps=0"], "network.vmc_downlink_mbps"),
    (["network.bandwidth_mbps=100"], "network.bandwidth_mbps"),
    (["network.rto_ms=0"], "network.rto_ms"),
    (["network.transport=tcp"], "network.transport"),
    (["credit.maximum=inf"], "credit.maximum"),
    (["workload.cross_vpp_share=nan"], "workload.cross_vpp_share"),
    (["experiment.name=../../escaped"], "experiment.name"),
    (["experiment.name=a/b"], "experiment.name"),
    (['experiment.name="two\\nlines"'], "experiment.name"),
    (["experiment.name=.hidden"], "experiment.name"),
    (["experiment.rounds=0"], "experiment.rounds"),
    (["experiment.seed=-1"], "experiment.seed"),
    (["topology.vpps=0"], "topology.vpps"),
    (['faults.partitions=[{start_ms=0, end_ms=100, groups=[["vpp-7/vmc"]]}]'],
     "faults.partitions[0].groups[0]"),
    (['faults.partitions=[{start_ms=0, end_ms=100, groups=[["vpp-0/vmc"]], rounds=[99]}]'],
     "faults.partitions[0].rounds[0]"),
    (['faults.partitions=[{start_ms=0, end_ms=inf, groups=[["vpp-0/vmc"]]}]'],
     "faults.partitions[0].end_ms"),
    (["sweep.network.loss=[0.1, 1.0]"], "sweep.network.loss[1]"),
    (["sweep.experiment.name=[\"ok\", \"../x\"]"], "sweep.experiment.name[1]"),
]


@pytest.mark.parametrize(("sets", "key"), HOSTILE, ids=[h[1] + ":" + h[0][0] for h in HOSTILE])
def test_a_hostile_value_is_refused_by_key_and_leaves_nothing(sets, key, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", str(QUICKSTART), "--runtime", "local", "--quiet", "--out", str(out),
                 *[a for s in sets for a in ("--set", s)]])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f"error: {key}: "), err
    assert "Traceback" not in err
    assert not out.exists() or list(out.iterdir()) == []


def test_credit_that_leaves_no_usable_candidate_no_longer_crashes(tmp_path):
    """Datagram loss takes votes; honest VMCs lose credit for them until every main-chain
    candidate is suspended -- this ended in ``ZeroDivisionError: integer modulo by zero``.
    (With reliable transport, the default, nothing is lost: see test_transport.py.)"""
    cfg = load_config(QUICKSTART, ["experiment.runtime=local", "experiment.seed=1",
                                   "topology.nodes_per_vpp=10", "network.loss=0.2",
                                   "network.transport=datagram", "experiment.rounds=25"])
    run = run_local(cfg, tmp_path)
    consensus = load_table(run, "consensus")
    assert len(consensus) == 25 * (cfg.topology.vpps + 1)
    assert (consensus.committee_size >= 1).all()
    assert consensus.committee_degraded.any()  # the rounds that seated suspended nodes say so
