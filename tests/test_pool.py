"""The studies' shared pool (runtime.pool): every item once, in worker processes when asked."""

from __future__ import annotations

import os

from mlts_ray.runtime.pool import each


def _square_and_pid(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


def test_one_job_runs_here_in_order():
    assert list(each(_square_and_pid, range(4))) == [(x * x, os.getpid()) for x in range(4)]


def test_several_jobs_run_every_item_once_in_other_processes():
    got = list(each(_square_and_pid, range(6), jobs=2))
    assert sorted(v for v, _ in got) == [x * x for x in range(6)]
    assert os.getpid() not in {pid for _, pid in got}
