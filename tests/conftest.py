from __future__ import annotations

import json
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
VECTORS = TESTS / "vectors"


def load_vectors(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return TESTS.parent


@pytest.fixture(scope="session", autouse=True)
def ray_outside_the_suite(request):
    """A Ray head the suite did not start, as another user's or another suite's on the same
    machine: it must come through the whole suite with every process it had (no test may stop
    or kill a Ray it did not start). Started when the session runs the Ray tests (a session
    of a few other tests does not pay for it); skipped where Ray is not installed."""
    ray_tests = any(item.module.__name__.startswith("test_ray") for item in request.session.items)
    try:
        import ray_clusters
    except ImportError:  # no Ray here: nothing to protect
        ray_tests = False
    if not ray_tests:
        yield
        return
    head = ray_clusters.start_head(cpus=1, dashboard=False)
    before = {p.pid for p in head.processes()}
    try:
        yield
        gone = before - {p.pid for p in head.processes() if p.is_running()}
        assert not gone, f"the suite ended {len(gone)} processes of a Ray it did not start"
    finally:
        ray_clusters.stop_head(head)
