"""``mlts run`` on Ray (docs/architecture.md section 7): place the run, start its actors,
drive the rounds (each written while the next runs) and translate what fails in an actor
into an error naming its subject; the actors end with the run, whatever happens."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayActorError, RayError, RayTaskError

from mlts_ray.config import Config
from mlts_ray.errors import MltsError, RunError
from mlts_ray.mlts.topology import chain_sizes
from mlts_ray.results.schemas import assemble
from mlts_ray.runtime.driver import Progress, drive, open_sink
from mlts_ray.runtime.placement import Placement, place_run
from mlts_ray.runtime.ray.actors import Actors, start
from mlts_ray.runtime.ray.cluster import connect
from mlts_ray.runtime.ray.sides import fetch_pieces


def fetch_round(pieces: list[Any]) -> dict[str, Any]:
    """A round's tables from the coordinator's pieces: the hosts' fetched (one call for all
    of them), then each table put together in piece order (``tables.assemble``)."""
    return assemble(fetch_pieces(pieces))


def run_ray(
    cfg: Config, out: str | Path, address: str | None = None, progress: Progress | None = None,
    on_round: Callable[[int, list[Any]], None] | None = None, resume: str | Path | None = None,
) -> Path | str:
    """Run ``cfg`` on Ray, streaming each round's tables to ``out/<run_id>`` (or continuing the
    interrupted run ``resume``). ``on_round(rnd, actors)`` is called after each written round
    with the node hosts, then the chain drivers (tests use it to inject failures)."""
    connect(address)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    placement = place_run(chain_sizes(cfg.topology), cfg.experiment.nodes_per_actor, cpus)
    with open_sink(cfg, out, resume, "ray") as sink:  # a failure before the loop marks it failed
        t0 = time.perf_counter()
        actors = start(cfg, placement, cpus)
        try:
            info = _where(cfg, placement, actors, cpus)
            info["startup_s"] = round(time.perf_counter() - t0, 3)

            def submit(rnd: int):
                ref = actors.coordinator.run_round.remote(rnd)  # it runs calls in order
                return lambda: _unwrapped(lambda: fetch_round(ray.get(ref)), f"round {rnd}")

            after = (lambda rnd: on_round(rnd, actors.owners)) if on_round else None
            return drive(cfg, sink, progress=progress, after_round=after, submit=submit,
                         runtime="ray", ray=info)
        finally:
            actors.kill()


def _where(cfg: Config, placement: Placement, actors: Actors, cpus: int) -> dict[str, Any]:
    """Where the run's actors are, for the manifest: the Ray nodes, each chain's (so a user,
    and the cluster test, can see the side chains spread over the cluster) and where the side
    chains' state lives (on the hosts that run them whole, or on chain drivers)."""
    where = _unwrapped(lambda: ray.get([a.node_id.remote() for a in actors.every]), "start-up")
    return {
        "nodes": sorted(set(where)), "actors_per_node": dict(Counter(where)),
        "hosts": len(actors.hosts), "nodes_per_actor": cfg.experiment.nodes_per_actor,
        "cluster_cpus": cpus,
        "chain_nodes": {chain: sorted({where[h] for h in placement.hosts_of(chain)}
                                      or {where[-1]})  # none: the coordinator's
                        for chain, _ in chain_sizes(cfg.topology)},
        "side_state": "drivers" if actors.drivers else "hosts", "drivers": len(actors.drivers),
    }


def _unwrapped(call: Callable[[], Any], subject: str) -> Any:
    """``call()``, with an error raised in an actor re-raised as itself (a RunError naming its
    subject) instead of Ray's wrapper and its remote stack, which the user cannot act on."""
    try:
        return call()
    except MltsError as err:  # raised in an actor; Ray's wrapper subclasses the original
        raise RunError(err.subject, err.why) from None
    except RayTaskError as err:
        cause = err.cause
        if isinstance(cause, MltsError):
            raise RunError(cause.subject, cause.why) from None
        if isinstance(cause, RayActorError):
            raise RunError(subject, f"an actor died ({type(cause).__name__}); every finished "
                           "round is in the run directory") from None
        raise RunError(subject, f"internal error in an actor: {type(cause).__name__}: "
                       f"{cause}") from None
    except RayActorError as err:
        raise RunError(subject, f"the coordinator died ({type(err).__name__}); every finished "
                       "round is in the run directory") from None
    except RayError as err:
        raise RunError(subject, f"Ray failed: {type(err).__name__}: {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    lines = [line for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
