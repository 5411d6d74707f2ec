"""``ray job submit`` of a small run to a Ray head this test starts (``ray start --head`` in a
temporary directory, stopped afterwards): the job's `mlts run` joins that cluster through the
RAY_ADDRESS the job gets, and writes a complete run where we asked."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("ray")

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head():
    temp = Path(tempfile.mkdtemp(prefix="mltsray", dir="/tmp"))  # short: Ray's socket paths
    port, dash = _free_port(), _free_port()
    # Ray 2.60 turns token authentication on: the head and every client share one token.
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env.pop("RAY_ADDRESS", None)
    subprocess.run(
        [BIN / "ray", "start", "--head", f"--port={port}", "--num-cpus=2",
         "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
         f"--temp-dir={temp}", "--disable-usage-stats"],
        check=True, env=env, capture_output=True, timeout=120,
    )
    try:
        yield f"http://127.0.0.1:{dash}", env
    finally:
        subprocess.run([BIN / "ray", "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


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
