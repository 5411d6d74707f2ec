"""The Ray actors (docs/architecture.md section 7) -- plain classes given ``ray.remote`` here
-- and their start and one teardown: node hosts (``HostService``) in PACK placement groups,
chain drivers for side chains spread over several hosts, and the coordinator that runs the
rounds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from mlts_ray.config import Config, from_toml, to_toml
from mlts_ray.errors import RunError
from mlts_ray.mlts.side_service import run_consensus
from mlts_ray.mlts.topology import chain_sizes
from mlts_ray.names import MAIN
from mlts_ray.runtime.frozen import freeze_setup
from mlts_ray.runtime.placement import Placement, side_owners
from mlts_ray.runtime.ray.cluster import timeout_s
from mlts_ray.runtime.ray.host import HostService
from mlts_ray.runtime.ray.sides import RaySides
from mlts_ray.runtime.ray.windows import RayRunner
from mlts_ray.runtime.rounds import Rounds


class RayHost(HostService):
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


class ChainDriver(RayHost):
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
        outs = run_consensus(services, self.runner)
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
    on_hosts = placement.hosts_of(MAIN)
    return Rounds(cfg, runner=(lambda ids, keys: RayRunner(cfg, hosts, placement)) if on_hosts
                  else None, sides=lambda ids, keys, runner: RaySides(cfg, owners, owner_of))


def start_drivers(cfg: Config, hosts: Sequence[Any], placement: Placement,
                  cpus: int) -> list[Any]:
    """The chain drivers of the side chains spread over several hosts (none when every side
    chain runs whole), as many as ``placement.side_owners`` deals them to at ``cpus`` (the
    count ``placement`` was made for); like the coordinator they ask for no CPU (they mostly
    wait for the hosts)."""
    _, count = side_owners(placement, _sides(cfg), cpus)
    actor = ray.remote(ChainDriver).options(num_cpus=0, max_restarts=0)
    return [actor.remote(to_toml(cfg), hosts, placement) for _ in range(count)]


class Coordinator:
    """Owns the main chain, the cross-VPP book and anchoring, and runs the rounds; the side
    chains' state lives on their owners (``ray_rounds``)."""

    def __init__(self, cfg_toml: str, hosts: Sequence[Any], placement: Placement,
                 drivers: Sequence[Any] = ()) -> None:
        self.rounds = ray_rounds(from_toml(cfg_toml), hosts, placement, drivers)
        freeze_setup()  # the simulation lives as long as the actor: out of every collection

    def run_round(self, rnd: int) -> list[Any]:
        """The round's pieces: those made here as record batches, the side chains' owners'
        as references the driver fetches (``run.fetch_round``)."""
        return self.rounds.pieces(rnd)

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()


@dataclass
class Actors:
    """A run's actors and placement groups: what the one teardown (``kill``) ends."""

    hosts: list[Any] = field(default_factory=list)
    groups: list[Any] = field(default_factory=list)
    drivers: list[Any] = field(default_factory=list)
    coordinator: Any = None

    @property
    def owners(self) -> list[Any]:
        """The actors that own side chains' state: the hosts, then the chain drivers."""
        return [*self.hosts, *self.drivers]

    @property
    def every(self) -> list[Any]:
        return [*self.owners, *([self.coordinator] if self.coordinator is not None else [])]

    def kill(self) -> None:
        for handle in self.every:
            ray.kill(handle)
        for pg in self.groups:
            remove_placement_group(pg)


def start(cfg: Config, placement: Placement, cpus: int) -> Actors:
    """Every actor of a run: the hosts, the chain drivers and the coordinator (which, like
    the drivers, asks for no CPU: it mostly waits for the hosts)."""
    actors = start_hosts(cfg, placement)
    try:
        actors.drivers = start_drivers(cfg, actors.hosts, placement, cpus)
        actors.coordinator = ray.remote(Coordinator).options(num_cpus=0, max_restarts=0).remote(
            to_toml(cfg), actors.hosts, placement, actors.drivers)
    except BaseException:
        actors.kill()
        raise
    return actors


def _sides(cfg: Config) -> list[str]:
    return [chain for chain, _ in chain_sizes(cfg.topology) if chain != MAIN]


def start_hosts(cfg: Config, placement: Placement, share: float = 0.9) -> Actors:
    """Host actors, each group of hosts in one PACK placement group; fractional CPUs, at most
    ``share`` of the cluster's in all (the bench starts two runs' hosts side by side)."""
    cpus = max(1.0, ray.cluster_resources().get("CPU", 1.0))
    per_host = min(1.0, round(share * cpus / len(placement.hosts), 4))
    args = (to_toml(cfg),)
    actor = ray.remote(RayHost)
    actors = Actors([None] * len(placement.hosts))
    hosts, groups = actors.hosts, actors.groups
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
        actors.kill()
        raise
    return actors


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
