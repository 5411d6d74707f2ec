"""Runs in parallel processes (the studies' pool): independent local runs, ``jobs`` at a time.

Forked workers run the code this process imported, whatever changes on disk meanwhile, and
each run is the local runtime's (``runtime.local``): a Ray run uses the cluster's CPUs by
itself and is never started from a pool.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def each(fn: Callable[[T], R], items: Iterable[T], jobs: int = 1) -> Iterator[R]:
    """``fn`` of every item, in completion order; one process per job, or this one alone
    for ``jobs = 1`` (no pool, so a failure's traceback is this process's)."""
    items = list(items)
    if jobs <= 1 or len(items) <= 1:
        yield from map(fn, items)
        return
    with mp.get_context("fork").Pool(min(jobs, len(items))) as pool:
        yield from pool.imap_unordered(fn, items)
