"""A run's setup frozen out of the garbage collector's scans (``runtime.frozen``), and given
back when the run ends: another run in the same process (a test suite, a notebook) never keeps
this one's objects frozen."""

from __future__ import annotations

import gc
import weakref

import pytest

from mlts_ray.config import build_config
from mlts_ray.runtime.frozen import setup_frozen
from mlts_ray.runtime.local import run_local


def _cfg():
    return build_config({"experiment": {"name": "gc", "seed": 2, "rounds": 2},
                         "topology": {"vpps": 2, "nodes_per_vpp": 4}})


def test_a_local_run_freezes_its_setup_while_it_runs_and_gives_it_back(tmp_path):
    assert gc.get_freeze_count() == 0
    seen = []
    run_local(_cfg(), tmp_path, progress=lambda done, total: seen.append(gc.get_freeze_count()))
    assert len(seen) == 2 and all(n > 1_000 for n in seen)  # the modules, keys, services
    assert gc.get_freeze_count() == 0


def test_a_failing_run_gives_its_frozen_objects_back_too():
    with pytest.raises(ZeroDivisionError), setup_frozen():
        assert gc.get_freeze_count() > 0
        1 // 0  # noqa: B018 -- the run's failure
    assert gc.get_freeze_count() == 0


def test_a_cycle_of_setup_objects_waits_for_the_run_to_end():
    """A reference cycle built by setup and dropped during the run is not collected while the
    run lasts (the price of freezing) and is as soon as it ends."""

    class Node:
        pass

    a, b = Node(), Node()
    a.peer, b.peer = b, a
    alive = weakref.ref(a)
    with setup_frozen():
        del a, b
        gc.collect()
        during = alive() is not None
    gc.collect()
    assert during and alive() is None
