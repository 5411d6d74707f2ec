"""The rounds ``mlts bench``'s scale-out figures are measured on (``runtime.scale_model``): the
same config's rounds run locally, on Ray over every CPU and on Ray with one host, interleaved
round by round.

Why interleaved: a shared machine's speed drifts within a minute (docs/architecture.md
section 11), and a speed-up is one round's local wall over the same round's wall predicted
from Ray. Measured a minute apart the two need not describe the same machine; measured within
seconds of each other they do.

Each simulation checks signatures with its own verify cache: the same seed signs the same
messages in all three, and one must not have checked them for another (a Ray round would
find the local round's signatures cached and look faster than it is).
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mlts_ray.config import Config
from mlts_ray.ledger.crypto import VERIFY_CACHE
from mlts_ray.runtime.rounds import Rounds
from mlts_ray.mlts.topology import chain_sizes
from mlts_ray.runtime.frozen import setup_frozen
from mlts_ray.runtime.scale_model import RayRound

ROUNDS = (1, 2, 3)  # round 0 warms up: actors start, keys are derived


@dataclass
class Measured:
    """Each of ``ROUNDS`` as each runtime ran it: the local wall and side chains' part, and
    the Ray rounds over every CPU and on one host (None where Ray is not at hand)."""

    local: list[tuple[float, float]] = field(default_factory=list)  # (round, side chains)
    every_cpu: list[RayRound] | None = None
    one_host: list[RayRound] | None = None


def measure(cfg: Config, ray_packed: bool = True) -> Measured:
    """``ROUNDS`` of ``cfg``: locally and, with ``ray_packed`` and Ray importable, on Ray over
    every CPU and on one host, each round in the three runtimes in turn."""
    local = Rounds.local(cfg)
    sims: dict[str, Callable[[int], Any]] = {"local": _local(local)}
    with contextlib.ExitStack() as stack:
        if ray_packed and (ray_sims := stack.enter_context(_ray_sims(cfg))) is not None:
            sims |= ray_sims
        caches: dict[str, dict] = {name: {} for name in sims}
        got: dict[str, list] = {name: [] for name in sims}
        with setup_frozen():  # as a local run and the coordinator actor have it
            for rnd in (0, *ROUNDS):
                for name, run in sims.items():
                    with _own_cache(caches, name):
                        measured = run(rnd)
                    if rnd:
                        got[name].append(measured)
    return Measured(got["local"], got.get("every_cpu"), got.get("one_host"))


def _local(rounds: Rounds) -> Callable[[int], tuple[float, float]]:
    def run(rnd: int) -> tuple[float, float]:
        gc.collect()
        start = time.perf_counter()
        rounds.rows(rnd)
        # the side chains' services, timed by its TimedSides: what the Ray runtime
        # runs on the hosts that own the chains, in parallel
        return time.perf_counter() - start, rounds.sim.services.work_s

    return run


@contextlib.contextmanager
def _own_cache(caches: dict[str, dict], name: str) -> Iterator[None]:
    old = VERIFY_CACHE.swap(caches[name])
    try:
        yield
    finally:
        caches[name] = VERIFY_CACHE.swap(old)


@contextlib.contextmanager
def _ray_sims(cfg: Config) -> Iterator[dict[str, Callable[[int], RayRound]] | None]:
    """A Ray simulation of ``cfg`` over every CPU and one on one host (the coordinator in
    this process, as the bench has it), their hosts killed at the end; None without Ray."""
    try:
        import ray

        from mlts_ray.runtime.placement import place_run
        from mlts_ray.runtime.ray.actors import ray_rounds, start_hosts
        from mlts_ray.runtime.ray.cluster import connect
    except ImportError:
        yield None
        return
    connect(None)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    started = []
    try:
        sims = {}
        # both runs' hosts at once: each reserves part of the CPUs (a reservation, not a
        # limit: a host runs as fast as the machine lets it)
        for name, k, share in (("every_cpu", cpus, 0.5), ("one_host", 1, 0.4)):
            placement = place_run(chain_sizes(cfg.topology), "auto", k)
            started.append(start_hosts(cfg, placement, share))
            sims[name] = _on_ray(ray_rounds(cfg, started[-1].hosts, placement))
        yield sims
    finally:
        for actors in started:
            actors.kill()


def _on_ray(rounds: Rounds) -> Callable[[int], RayRound]:
    """What the coordinator actor does a round (``actors.Coordinator.run_round``: the round,
    then its own rows as record batches), timed at the coordinator: its wall (not the
    driver's fetch of the rows, which a run does while the next round runs), each call's host
    work and wait and the coordinator's overlapped work (``RaySides``)."""
    from mlts_ray.runtime.ray.sides import fetch_pieces

    def run(rnd: int) -> RayRound:
        start = time.perf_counter()
        pieces = rounds.pieces(rnd)
        wall = time.perf_counter() - start
        fetch_pieces(pieces)
        sides = rounds.sim.services
        return RayRound(wall, sides.work_s, sides.wait_s,
                        {c: h for h, chains in sides.chains_of.items() for c in chains},
                        sides.overlap_s, sides.cpu_s, sides.overlap_cpu_s)

    return run
