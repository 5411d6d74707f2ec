"""Runs can be written to and read from any pyarrow filesystem URI, not only local paths."""

from __future__ import annotations

import pytest

from mlts_ray.analysis.load import load_table, read_manifest
from mlts_ray.analysis.verify import verify_run
from mlts_ray.config import build_config
from mlts_ray.errors import RunError
from mlts_ray.runtime.local import run_local


def test_a_run_written_to_a_file_uri_reads_and_verifies_through_the_uri(tmp_path):
    cfg = build_config({"experiment": {"rounds": 2, "runtime": "local"},
                        "topology": {"vpps": 2, "nodes_per_vpp": 5}})
    run = run_local(cfg, f"file://{tmp_path}/runs")
    assert isinstance(run, str) and run.startswith("file://")
    assert read_manifest(run)["status"] == "complete"
    assert len(load_table(run, "consensus")) == 2 * 3
    assert verify_run(run).blocks == len(load_table(run, "blocks"))
    # no temporary files are left behind by the write-then-move protocol
    assert not list(tmp_path.rglob(".*.tmp"))


def test_bad_locations_are_named(tmp_path):
    with pytest.raises(RunError, match="not a run directory"):
        read_manifest(tmp_path)
    with pytest.raises(RunError, match="nosuch://x"):
        read_manifest("nosuch://x/y")
