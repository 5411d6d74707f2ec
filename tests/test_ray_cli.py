"""``mlts`` on Ray as a user runs it, in a fresh process (issue 12, item 6): a dead --address
fails at once naming it, and stdout carries only mlts's results while Ray and its children
write wherever they like."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")

ROOT = Path(__file__).parent.parent
QUICKSTART = ROOT / "experiments" / "quickstart.toml"
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}


def _mlts(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    # the timeout bounds a hang (Ray used to retry a dead address for 8 minutes); no timing
    # is asserted
    return subprocess.run([sys.executable, "-m", "mlts_ray.cli", *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_dead_address_is_refused_by_name_without_waiting_for_ray(tmp_path):
    address = f"127.0.0.1:{_unused_port()}"
    done = _mlts("run", str(QUICKSTART), "--runtime", "ray", "--quiet", "--out",
                 str(tmp_path / "out"), "--address", address, timeout=90)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"error: --address: no Ray cluster answers at {address} ")
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert not (tmp_path / "out").exists()


def test_an_address_with_a_bad_port_is_refused_by_name(tmp_path):
    done = _mlts("run", str(QUICKSTART), "--runtime", "ray", "--quiet", "--out",
                 str(tmp_path / "out"), "--address", "127.0.0.1:99999", timeout=90)
    assert done.returncode == 2 and done.stderr.startswith("error: --address: "), done.stderr


def test_quiet_ray_run_prints_exactly_its_run_directory(tmp_path):
    """25 host actors on 2 CPUs: the raylet warns that it started more worker processes than
    it expected -- the warning that used to land on stdout after the run directory."""
    done = _mlts("run", str(QUICKSTART), "--runtime", "ray", "--quiet", "--out",
                 str(tmp_path), "--set", "experiment.rounds=2", "--set", "topology.vpps=6",
                 "--set", "topology.nodes_per_vpp=15", "--set", "experiment.nodes_per_actor=4")
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    assert Path(line).parent == tmp_path and (Path(line) / "manifest.json").is_file()
    assert "raylet" not in done.stdout


def test_children_started_while_ray_runs_cannot_write_to_stdout():
    """What raylet and GCS do: processes Ray starts inherit descriptor 1. Inside the guard
    they get stderr; the guard's own stdout is back afterwards."""
    script = (
        "import os, subprocess, sys\n"
        "from mlts_ray.runtime.ray.cluster import stdout_kept_for_results\n"
        "with stdout_kept_for_results():\n"
        "    subprocess.run(['echo', 'child-of-ray'])\n"
        "    os.write(1, b'core-worker\\n')\n"
        "    print('python-print', flush=True)\n"
        "print('result')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "result\n"
    assert {"child-of-ray", "core-worker", "python-print"} <= set(done.stderr.split())
