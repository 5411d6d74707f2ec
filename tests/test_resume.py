"""Crash-safe results: Ctrl-C stops at a round boundary and says how to resume; after SIGKILL
at any instant the directory reads; ``--resume`` finishes with the tables an uninterrupted run
has; resuming with another config is refused by key (docs/architecture.md sections 7 and 9)."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlts_ray.analysis.load import load_table, read_manifest
from mlts_ray.analysis.verify import verify_run
from mlts_ray.cli import main
from mlts_ray.config import build_config
from mlts_ray.errors import ConfigError, RunError
from mlts_ray.runtime.local import run_local
from mlts_ray.results.schemas import TABLES

from run_checks import assert_same_tables

ROUNDS = 30  # about 3 s: room to interrupt it anywhere
SETTINGS = ["experiment.runtime=local", f"experiment.rounds={ROUNDS}", "topology.vpps=3",
            "topology.nodes_per_vpp=16", "consensus.algorithm=pbft",
            "faults.byzantine_fraction=0.25",
            'faults.behaviours=["silent","forge","equivocate","abandon"]']


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "exp.toml"
    path.write_text('[experiment]\nname = "resume"\nseed = 9\n')
    return path


@pytest.fixture(scope="module")
def reference(config_file, tmp_path_factory) -> Path:
    cfg = build_config({"experiment": {"name": "resume", "seed": 9}}, SETTINGS)
    return run_local(cfg, tmp_path_factory.mktemp("ref"))


def _start(config_file, out) -> subprocess.Popen:
    args = [sys.executable, "-m", "mlts_ray.cli", "run", str(config_file), "--quiet",
            "--out", str(out)] + [a for s in SETTINGS for a in ("--set", s)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_round(out: Path, rounds: int, proc, timeout=60) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for manifest in out.glob("*/manifest.json"):
            try:
                if json.loads(manifest.read_text())["rounds_done"] >= rounds:
                    return manifest.parent
            except (ValueError, KeyError):
                pass
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("no progress")


def _resume(config_file, run_dir: Path) -> None:
    args = ["run", str(config_file), "--quiet", "--resume", str(run_dir)]
    assert main(args + [a for s in SETTINGS for a in ("--set", s)]) == 0


def test_sigint_stops_at_a_round_boundary_and_resume_matches(config_file, reference, tmp_path):
    proc = _start(config_file, tmp_path)
    run_dir = _wait_for_round(tmp_path, 2, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "resume with: mlts run" in err and str(run_dir) in err and "Traceback" not in err
    # the first Ctrl-C is acknowledged when it comes, naming the round it waits for
    said = re.search(r"stopping once round (\d+) is stored .*press Ctrl-C again to stop now", err)
    assert said, err
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "interrupted" and 2 <= manifest["rounds_done"] < ROUNDS
    assert manifest["rounds_done"] == int(said.group(1)) + 1
    _resume(config_file, run_dir)
    assert read_manifest(run_dir)["status"] == "complete"
    assert_same_tables(reference, run_dir)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_at_a_random_instant_leaves_a_readable_resumable_run(config_file, reference, tmp_path, seed):
    proc = _start(config_file, tmp_path)
    run_dir = _wait_for_round(tmp_path, 1, proc)
    time.sleep(random.Random(seed).uniform(0, 0.4))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = read_manifest(run_dir)["rounds_done"]
    assert done < ROUNDS, "the run finished before the kill: make it longer"
    for name in TABLES:  # readable, and only complete rounds
        df = load_table(run_dir, name)
        assert df.empty or set(df["round"]) <= set(range(done))
    assert set(load_table(run_dir, "consensus")["round"]) == set(range(done))
    _resume(config_file, run_dir)
    assert_same_tables(reference, run_dir)
    verify_run(run_dir)  # a killed-and-resumed run proves itself like an uninterrupted one


def test_resume_with_another_config_is_refused_by_key(config_file, tmp_path):
    cfg = build_config({"experiment": {"name": "resume", "seed": 9}}, SETTINGS)
    run = run_local(cfg, tmp_path)
    manifest = run / "manifest.json"
    data = json.loads(manifest.read_text())
    data["status"], data["rounds_done"] = "interrupted", 3
    manifest.write_text(json.dumps(data))
    changed = build_config({"experiment": {"name": "resume", "seed": 9}},
                           [*SETTINGS, "consensus.view_timeout_ms=250"])
    with pytest.raises(ConfigError) as err:
        run_local(changed, tmp_path, resume=run)
    assert err.value.subject == "consensus.view_timeout_ms"
    # where it runs is not part of the config being compared
    moved = build_config({"experiment": {"name": "resume", "seed": 9}},
                         [*SETTINGS, "experiment.nodes_per_actor=3"])
    run_local(moved, tmp_path, resume=run)
    assert read_manifest(run)["status"] == "complete"
    with pytest.raises(RunError, match="nothing to resume"):
        run_local(moved, tmp_path, resume=run)
