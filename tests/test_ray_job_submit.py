"""``ray job submit`` of a small run to a Ray head this test starts (``ray start --head`` in a
temporary directory, its own processes stopped afterwards -- no other Ray on the machine is
touched): the job's `mlts run` joins that cluster through the RAY_ADDRESS the job gets, and
writes a complete run where we asked."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")

import ray_clusters  # noqa: E402

BIN = Path(sys.executable).parent

@pytest.fixture
def ray_head():
    with ray_clusters.ray_head() as head:
        yield head.dashboard, head.env


def test_stopping_a_head_leaves_a_ray_it_did_not_start_running():
    """What the suite does to the Ray it starts (``ray_clusters.stop_head``) ends that Ray's
    processes only: a head started first, as another user's or another suite's would be,
    keeps every process and still answers."""
    with ray_clusters.ray_head(cpus=1, dashboard=False) as outside:
        before = {p.pid for p in outside.processes()}
        assert len(before) >= 3  # the GCS, the raylet and its agents at least
        mine = ray_clusters.start_head(cpus=1, dashboard=False)
        assert not {p.pid for p in mine.processes()} & before
        ray_clusters.stop_head(mine)
        assert not mine.processes()  # all of it ended
        assert {p.pid for p in outside.processes() if p.is_running()} >= before
        with socket.create_connection(("127.0.0.1", outside.port), timeout=5):
            pass  # its GCS still accepts connections


@pytest.mark.slow
def test_ray_job_submit_runs_an_experiment_on_the_cluster(ray_head, repo_root, tmp_path):
    address, env = ray_head
    out = tmp_path / "runs"
    job = subprocess.run(
        [BIN / "ray", "job", "submit", "--address", address, "--working-dir", str(repo_root),
         "--runtime-env-json", json.dumps({"excludes": [".venv", ".git", "runs", "*.egg-info"]}),
         "--", "mlts", "run", "experiments/quickstart.toml", "--quiet", "--out", str(out),
         "--set", "experiment.rounds=2", "--set", "topology.vpps=2"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    (run,) = out.iterdir()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["rounds_done"] == 2
    assert manifest["runtime"] == "ray" and sum(manifest["ray"]["actors_per_node"].values()) >= 2
    assert str(run) in job.stdout  # the job printed its run directory
