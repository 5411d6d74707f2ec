"""The Ray runtime (docs/architecture.md section 7): node hosts as actors, a coordinator actor that runs the
rounds, chain drivers (``ChainDriver``, and the coordinator for the main chain) that deliver
the messages of chains spread over several hosts in conservative windows (``RayRunner``),
results streamed back as Arrow record batches; each side chain's state lives on the host
that runs it whole or on its chain driver (``ray_sides``). With it, the only modules that
import ``ray``.

Per window a driver makes one call per host that has events in it, never one call per
protocol message; the windows of all its chains of a round are in flight together, so side
chains run in parallel across hosts. Every outcome is the same as the local runtime's: each
node sees the same events in the same order (see ``net.sim``), whatever the placement.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayActorError, RayError, RayTaskError
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from mlts_ray.config import Config, to_toml
from mlts_ray.errors import MltsError, RunError
from mlts_ray.ledger.crypto import DerivedKeyRing, KeyRing
from mlts_ray.mlts.consensus_round import Job, Outcome, finish, from_wire, prepare
from mlts_ray.mlts.topology import chain_sizes
from mlts_ray.runtime.budget import Machine
from mlts_ray.runtime.host import HostService
from mlts_ray.runtime.placement import Placement, place_run, side_owners
from mlts_ray.net.sim import DST
from mlts_ray.runtime.collector import freeze_setup
from mlts_ray.runtime.driver import drive, open_sink
from mlts_ray.runtime.ray_sides import RaySides, fetch_pieces, get_named
from mlts_ray.results.schemas import assemble
from mlts_ray.runtime.rounds import Rounds

Progress = Callable[[int, int], None]


class _RayHost(HostService):
    """A host actor: its process lives as long as the run, so what its setup built is frozen
    out of the garbage collector's scans (``collector``)."""

    def __init__(self, cfg_toml: str) -> None:
        super().__init__(cfg_toml)
        freeze_setup()

    def own(self, vpps: Sequence[int]) -> None:
        super().own(vpps)
        freeze_setup()

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()


class RayRunner:
    """Runs a round's consensus jobs together on the host actors, window by window."""

    def __init__(self, cfg: Config, hosts: Sequence[Any], placement: Placement) -> None:
        self.cfg, self.hosts, self.placement = cfg, list(hosts), placement
        self.keys = DerivedKeyRing(cfg.experiment.seed)
        self.indices = {
            (chain, h): [i for (c, i) in self.placement.hosts[h].nodes if c == chain]
            for h in range(len(self.hosts)) for chain in {c for c, _ in self.placement.hosts[h].nodes}
        }

    def __call__(self, jobs: Sequence[Job]) -> Iterator[Outcome]:
        """Chains that live on one host run whole there, in parallel; chains spread over
        several hosts are driven here window by window. Outcomes come out in job order as each
        is ready, so the caller records the first chains while hosts still run the last."""
        started = time.perf_counter()
        whole = {k: self.placement.hosts_of(j.inst.chain) for k, j in enumerate(jobs)}
        whole = {k: hs[0] for k, hs in whole.items() if len(hs) == 1}
        refs = {k: self.hosts[h].run_whole.remote(
                    dataclasses.replace(jobs[k], inst=dataclasses.replace(jobs[k].inst, keys=KeyRing())))
                for k, h in whole.items()}
        spread = [k for k in range(len(jobs)) if k not in whole]
        outs: dict[int, Outcome] = dict(zip(spread, self._windows([jobs[k] for k in spread]), strict=True))
        for k, job in enumerate(jobs):
            if k in refs:
                (out,) = get_named([refs[k]], [(job.inst.chain, job.inst.round)])
                out = from_wire(out, job.inst)
                out.wall_ms = (time.perf_counter() - started) * 1000
                yield out
            else:
                yield outs[k]

    def _windows(self, jobs: Sequence[Job]) -> list[Outcome]:
        """Chains spread over several hosts: trading here, then window by window."""
        started = time.perf_counter()
        runs = [prepare(self.cfg, job, self.keys.identity, self.keys, with_nodes=False)
                for job in jobs]
        walls: list[float | None] = [None] * len(runs)
        begins = []
        for run in runs:
            inst = run.job.inst
            spec = dataclasses.replace(inst, keys=KeyRing())  # hosts derive keys themselves
            # every host gets every faulty node's wrapper: a coalition spans hosts
            wrappers = dict(run.job.wrappers)
            for h in self.placement.hosts_of(inst.chain):
                indices = self.indices[(inst.chain, h)]
                begins.append(self.hosts[h].begin.remote(spec, indices, wrappers))
        get_named(begins, [(j.inst.chain, j.inst.round) for j in jobs])
        active = set(range(len(runs)))
        while active:
            refs, owners = [], []
            for k in sorted(active):
                sim, chain = runs[k].sim, runs[k].job.inst.chain
                batch = sim.window(runs[k].width)
                if not batch:
                    active.discard(k)
                    walls[k] = (time.perf_counter() - started) * 1000
                    continue
                by_host: dict[int, list] = defaultdict(list)
                for event in batch:
                    by_host[self.placement.host_of[(chain, event[DST])]].append(event)
                for h, events in by_host.items():
                    refs.append(self.hosts[h].process.remote(chain, events, sim.window_end))
                    owners.append(k)
            results = get_named(refs, [(jobs[k].inst.chain, jobs[k].inst.round) for k in owners])
            merged: dict[int, list] = defaultdict(list)
            for k, done in zip(owners, results, strict=True):
                merged[k].append(done)
            for k, batches in merged.items():
                runs[k].sim.apply(batches)
        outs = []
        for run, wall in zip(runs, walls, strict=True):
            out = finish(run)
            out.wall_ms = wall
            outs.append(out)
        return outs


class ChainDriver(_RayHost):
    """The owner of side chains spread over several hosts (``nodes_per_actor <
    nodes_per_vpp``): their services live here as a host's do (``HostService``), and their
    consensus is driven over the node hosts window by window, all this driver's chains'
    windows in flight together (``RayRunner``). A driver only calls node hosts, which call
    nobody, so no two actors ever wait on each other."""

    def __init__(self, cfg_toml: str, hosts: Sequence[Any], placement: Placement) -> None:
        super().__init__(cfg_toml)
        self.runner = RayRunner(self.cfg, hosts, placement)

    def sides_record(self, chains: Sequence[str], rnd: int) -> Any:
        """These chains' fills become contracts and their consensus runs, together; then each
        is recorded (its seconds of work: its record alone)."""
        services = [self.sides[c] for c in chains]
        outs = list(self.runner([s.consensus_job() for s in services]))
        return self._each(rnd, [partial(s.recorded, rnd, out)
                                for s, out in zip(services, outs, strict=True)])


def ray_rounds(cfg: Config, hosts: Sequence[Any], placement: Placement,
               drivers: Sequence[Any] = ()) -> Rounds:
    """The rounds as the coordinator runs them. Each side chain's state lives on the host
    that runs it whole (``auto`` packing, or ``nodes_per_actor >= nodes_per_vpp``) or else on
    a chain driver (``drivers``, as ``start_drivers`` made them); the main chain's instance
    runs here (over its hosts window by window when it has any), while the side chains'
    consensus runs on their owners."""
    owner_of, _ = side_owners(placement, _sides(cfg), len(drivers))
    owners = [*hosts, *drivers]
    if any(o >= len(owners) for o in owner_of.values()):
        raise ValueError("side chains spread over hosts need their chain drivers (start_drivers)")
    sides = lambda ids, keys: RaySides(cfg, owners, owner_of)  # noqa: E731
    runner = RayRunner(cfg, hosts, placement) if placement.hosts_of("main") else None
    return Rounds(cfg, runner=runner, sides=sides)


def start_drivers(cfg: Config, hosts: Sequence[Any], placement: Placement,
                  cpus: int) -> list[Any]:
    """The chain drivers of the side chains spread over several hosts (none when every side
    chain runs whole), as many as ``placement.side_owners`` deals them to at ``cpus`` (the
    count ``placement`` was made for); like the coordinator they ask for no CPU (they mostly
    wait for the hosts)."""
    _, count = side_owners(placement, _sides(cfg), cpus)
    actor = ray.remote(ChainDriver).options(num_cpus=0, max_restarts=0)
    return [actor.remote(to_toml(cfg), hosts, placement) for _ in range(count)]


class CoordinatorService:
    """Owns the main chain, the cross-VPP book and anchoring, and runs the rounds; the side
    chains' state lives on their owners (``ray_rounds``)."""

    def __init__(self, cfg_toml: str, hosts: Sequence[Any], placement: Placement,
                 drivers: Sequence[Any] = ()) -> None:
        import tomllib

        from mlts_ray.config import build_config

        self.rounds = ray_rounds(build_config(tomllib.loads(cfg_toml)), hosts, placement, drivers)
        freeze_setup()  # the simulation lives as long as the actor: out of every collection

    def run_round(self, rnd: int) -> list[Any]:
        """The round's pieces: those made here as record batches, the side chains' owners'
        as references the driver fetches (``fetch_round``)."""
        return self.rounds.pieces(rnd)

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()


def fetch_round(pieces: list[Any]) -> dict[str, Any]:
    """A round's tables from the coordinator's pieces: the hosts' fetched (one call for all
    of them), then each table put together in piece order (``tables.assemble``)."""
    return assemble(fetch_pieces(pieces))


def timeout_s() -> float:
    """How long joining a cluster may take (``MLTS_RAY_TIMEOUT_S``, default 30 s: a head on a
    LAN answers in milliseconds and ``ray.init`` of a local instance takes 3.4-5 s here)."""
    raw = os.environ.get("MLTS_RAY_TIMEOUT_S", "30")
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 3600:
        raise RunError("MLTS_RAY_TIMEOUT_S", f"{raw!r} is not a number of seconds in (0, 3600]")
    return value


def _endpoint(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a ``host:port`` or ``ray://host:port`` address; None for the
    addresses Ray resolves itself (``auto``, ``local``)."""
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not host:
        return None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise RunError("--address", f"{address!r}: the port must be a number in 1..65535")
    return host.strip("[]"), int(port)


def _probe(address: str, timeout: float) -> None:
    """Refuse an address nothing listens on before Ray retries it for minutes."""
    endpoint = _endpoint(address)
    if endpoint is None:
        return
    try:
        socket.create_connection(endpoint, timeout=timeout).close()
    except OSError as err:
        why = (f"no answer within {timeout:g} s" if isinstance(err, TimeoutError)
               else err.strerror or type(err).__name__)
        raise RunError("--address", f"no Ray cluster answers at {address} ({why}); start one "
                       "with `ray start --head` or fix --address / RAY_ADDRESS") from None


_connected_here = False  # ray.init was called by connect(), so release() may undo it


def connect(address: str | None) -> None:
    """Join ``address`` (or ``RAY_ADDRESS``), or start Ray locally; reuse a running session.
    Joining is bounded by ``timeout_s()`` and fails with a RunError naming the address."""
    global _connected_here
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    timeout = timeout_s()
    if address:
        _probe(address, timeout)
        # Ray's own waits for a GCS that accepts connections but does not answer (each try
        # would otherwise wait 60 s, retried): bounded by the same timeout unless set.
        for knob in ("RAY_py_gcs_connect_timeout_s", "RAY_gcs_rpc_server_connect_timeout_s"):
            os.environ.setdefault(knob, str(max(1, int(timeout))))
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as err:
        raise RunError(address or "ray", f"cannot start or join Ray: {err}") from None
    _connected_here = True


def release() -> None:
    """Undo ``connect``: stop the Ray instance it started, or leave the cluster it joined."""
    global _connected_here
    if _connected_here and ray.is_initialized():
        ray.shutdown()
    _connected_here = False


@contextmanager
def stdout_kept_for_results() -> Iterator[None]:
    """Ray's raylet, core worker and log monitor write to file descriptor 1 from C++ and from
    its threads; ``mlts`` promises that stdout carries its results only (the run directory is
    the last line). While Ray runs, descriptor 1 points at stderr; Ray is shut down before it
    is restored, so nothing Ray prints on the way out reaches stdout either."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        try:
            release()
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def _sides(cfg: Config) -> list[str]:
    return [chain for chain, _ in chain_sizes(cfg) if chain != "main"]


def start_hosts(cfg: Config, placement: Placement,
                share: float = 0.9) -> tuple[list[Any], list[Any]]:
    """Host actors, each group of hosts in one PACK placement group; fractional CPUs, at most
    ``share`` of the cluster's in all (the bench starts two runs' hosts side by side)."""
    cpus = max(1.0, ray.cluster_resources().get("CPU", 1.0))
    per_host = min(1.0, round(share * cpus / len(placement.hosts), 4))
    args = (to_toml(cfg),)
    actor = ray.remote(_RayHost)
    hosts: list[Any] = [None] * len(placement.hosts)
    groups = []
    for members in placement.groups.values():
        pg = placement_group([{"CPU": per_host}] * len(members), strategy="PACK")
        groups.append(pg)
        for bundle, h in enumerate(members):
            hosts[h] = actor.options(
                num_cpus=per_host, max_restarts=0,
                scheduling_strategy=PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=bundle),
            ).remote(*args)
    try:
        # four times the joining bound (2 min by default): an autoscaler may be adding a node
        _placed({name: (pg, len(members)) for (name, members), pg
                 in zip(placement.groups.items(), groups, strict=True)}, per_host,
                4 * timeout_s())
    except RunError:
        for handle in hosts:
            ray.kill(handle)
        for pg in groups:
            remove_placement_group(pg)
        raise
    return hosts, groups


def _placed(groups: dict[str, tuple[Any, int]], per_host: float, timeout: float) -> None:
    """Wait until Ray has placed every group (name -> its placement group, its hosts). A
    group no Ray node has the CPU for (its hosts together on one node: e.g. five groups of
    0.72 CPU on four 1-CPU nodes) would leave its hosts pending, and the run waiting,
    forever: it ends the run naming it."""
    ready = {pg.ready(): name for name, (pg, _) in groups.items()}
    _, pending = ray.wait(list(ready), num_returns=len(ready), timeout=timeout)
    if pending:
        name = min(ready[ref] for ref in pending)
        n = groups[name][1]
        raise RunError("experiment.nodes_per_actor", (
            f"no Ray node took the hosts of {name} within {timeout:g} s (a chain's hosts share "
            f"one node: {n} x {per_host:g} = {n * per_host:.4g} CPU); use 'auto', a larger "
            "pack, or nodes with more CPUs (while an autoscaler adds nodes, raise "
            "MLTS_RAY_TIMEOUT_S: this wait is four times it)"))


def run_ray(
    cfg: Config, out: str | Path, address: str | None = None, progress: Progress | None = None,
    on_round: Callable[[int, list[Any]], None] | None = None, resume: str | Path | None = None,
) -> Path | str:
    """Run ``cfg`` on Ray, streaming each round's tables to ``out/<run_id>`` (or continuing the
    interrupted run ``resume``). ``on_round(rnd, actors)`` is called after each written round
    with the node hosts, then the chain drivers (tests use it to inject failures)."""
    connect(address)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    placement = place_run(chain_sizes(cfg), cfg.experiment.nodes_per_actor, cpus)
    with open_sink(cfg, out, resume, "ray") as sink:  # a failure before the loop marks it failed
        t0 = time.perf_counter()
        hosts, groups = start_hosts(cfg, placement)
        drivers = start_drivers(cfg, hosts, placement, cpus)
        coordinator = ray.remote(CoordinatorService).options(num_cpus=0, max_restarts=0).remote(
            to_toml(cfg), hosts, placement, drivers
        )
        try:
            where = _unwrapped(lambda: ray.get(
                [h.node_id.remote() for h in [*hosts, *drivers]]
                + [coordinator.node_id.remote()]), "start-up")
            info = {
                "nodes": sorted(set(where)), "actors_per_node": dict(Counter(where)),
                "hosts": len(hosts), "nodes_per_actor": cfg.experiment.nodes_per_actor,
                "cluster_cpus": cpus, "startup_s": round(time.perf_counter() - t0, 3),
                # which Ray nodes each chain's hosts run on, so a user (and the cluster test)
                # can see the side chains spread over the cluster
                "chain_nodes": {chain: sorted({where[h] for h in placement.hosts_of(chain)}
                                              or {where[-1]})  # none: the coordinator's
                                for chain, _ in chain_sizes(cfg)},
                # where the side chains' state lives (ray_rounds): on the hosts that run
                # them whole, or on chain drivers when a chain is spread over hosts
                "side_state": "hosts" if not drivers else "drivers", "drivers": len(drivers),
            }

            def submit(rnd: int):
                ref = coordinator.run_round.remote(rnd)  # the coordinator runs calls in order
                return lambda: _unwrapped(lambda: fetch_round(ray.get(ref)), f"round {rnd}")

            after = (lambda rnd: on_round(rnd, [*hosts, *drivers])) if on_round else None
            return drive(cfg, sink, progress=progress, after_round=after, submit=submit,
                         runtime="ray", ray=info)
        finally:
            for handle in [*hosts, *drivers, coordinator]:
                ray.kill(handle)
            for pg in groups:
                remove_placement_group(pg)


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


def cluster_machine() -> Machine:
    """CPUs and memory of the Ray cluster ``connect`` reached: its ``memory`` resource (what
    Ray gives tasks and actors) plus its object store, which together are what was available
    when each node started."""
    resources = ray.cluster_resources()
    memory = int(resources.get("memory", 0) + resources.get("object_store_memory", 0))
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    where = "this machine" if nodes <= 1 else f"the Ray cluster ({nodes} nodes)"
    return Machine(max(1, int(resources.get("CPU", 1))), memory, where)
