"""What a run will take, estimated before anything starts, and a refusal of what cannot fit.

Pure policy (no Ray, no I/O but reading how much memory this machine has): ``estimate`` turns a
config and a runtime into nodes, host actors, memory and time; ``check`` refuses a config whose
estimate exceeds the machine, naming the key that makes it too big, unless forced.

The constants are measured on the 2-core, 24 GiB machine of docs/architecture.md section 7 (Ray 2.60,
Python 3.11); ``docs``-style sources are given beside each. They are deliberately on the high
side: the estimate is a guard against a run that would swap or never start, not a prediction.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from mlts_ray.config import Config, main_committee_size, side_committee_size
from mlts_ray.errors import ConfigError

MIB = 1 << 20
GIB = 1 << 30

#: Python, pyarrow, pandas, PyNaCl and the package imported: 173 MB RSS for 10 x 100 nodes over
#: 5 rounds, of which about 15 MB are the nodes (``/usr/bin/time -v mlts run``, local runtime).
BASE_BYTES = 180 * MIB
#: Per node: keys, credit, accounts, node state machine. 100 x 100 nodes, 3 rounds: 300 MB RSS,
#: i.e. about 15 KiB a node over the base; 20 KiB leaves room for larger chains (20 x 500: 339 MB).
NODE_BYTES = 20 * 1024
#: Per node and round: settled-trade ids and ledger history (100 x 100: 300 MB after 3 rounds,
#: 335 MB after 10, i.e. 0.5 KiB per node-round).
NODE_ROUND_BYTES = 600
#: ``ray.init`` with the dashboard off (docs/architecture.md section 7: 0.7 GiB).
RAY_BASE_BYTES = 700 * MIB
#: One Ray worker process per actor: docs/architecture.md section 7 measured 50 MiB; 146 host actors with
#: ``nodes_per_actor = 1`` took 10 GB (issue 12), about 70 MiB each.
ACTOR_BYTES = 70 * MIB
#: Actors start at about 3 per second on 2 cores (docs/architecture.md section 7).
ACTOR_STARTS_PER_S = 3.0
#: Host actors per CPU above which a run is refused: 16 per CPU keeps start-up under 11 s and the
#: per-window call fan-out (0.7-0.9 ms a call) below the work it carries on 2 cores.
ACTORS_PER_CPU = 16
#: Local runtime, per message of the closed-form count (about 2k^2 + N a chain and round):
#: 100 x 100 DCE-PBFT took 4.8 s a round for 38 k messages, 20 x 500 took 15.3 s for 111 k
#: (both 125-140 us a message, signatures and delivery included).
MESSAGE_S = 140e-6
#: Key derivation and set-up per node (10 x 100 nodes: about 1.5 s before the first round).
NODE_SETUP_S = 150e-6
#: Refuse above this share of the memory the machine (or cluster) has available.
MEMORY_SHARE = 0.8


@dataclass(frozen=True, slots=True)
class Machine:
    """What the run may use: CPUs and available memory in bytes (one machine or a cluster)."""

    cpus: int
    memory: int
    where: str = "this machine"


@dataclass(frozen=True, slots=True)
class Estimate:
    nodes: int
    actors: int  # Ray worker processes (hosts, chain drivers, the coordinator); 0 on local
    memory: int  # bytes at the end of the run
    seconds: float  # simulated rounds on this machine's class of CPU (start-up included)
    messages_per_round: int

    def describe(self) -> str:
        actors = f", {self.actors} Ray actors" if self.actors else ""
        return (f"{self.nodes:,} nodes{actors}, about {self.memory / GIB:.1f} GiB and "
                f"{_duration(self.seconds)}")


def messages_per_round(cfg: Config) -> int:
    """Closed-form protocol messages of one fault-free round over every chain (docs/architecture.md section 5)."""
    t = cfg.topology
    pbft = cfg.consensus.algorithm == "pbft"
    side_k = t.nodes_per_vpp if pbft else side_committee_size(cfg)
    main_n = t.vpps + t.grid_nodes
    main_k = main_n if pbft else min(main_n, main_committee_size(cfg))
    return t.vpps * _chain_messages(t.nodes_per_vpp, side_k) + _chain_messages(main_n, main_k)


def _chain_messages(n: int, k: int) -> int:
    # request, pre-prepare and reply k - 1 each, prepare (k - 1)^2, commit k (k - 1), and the
    # certificate to the n - k nodes outside the committee (the client is a member)
    return 3 * (k - 1) + (k - 1) ** 2 + k * (k - 1) + (n - k)


def estimate(cfg: Config, runtime: str, cpus: int) -> Estimate:
    t, rounds = cfg.topology, cfg.experiment.rounds
    nodes = t.vpps * t.nodes_per_vpp + t.vpps + t.grid_nodes
    sim_memory = nodes * (NODE_BYTES + NODE_ROUND_BYTES * rounds)
    messages = messages_per_round(cfg)
    seconds = nodes * NODE_SETUP_S + rounds * messages * MESSAGE_S
    if runtime != "ray":
        return Estimate(nodes, 0, BASE_BYTES + sim_memory, seconds, messages)
    actors = host_count(cfg, cpus) + driver_count(cfg, cpus) + 1
    # The hosts hold the node machines and (whole chains) the side chains' state, the chain
    # drivers (spread chains) the side chains' state, the coordinator the main chain: at
    # most twice the simulation, plus a worker process per actor and Ray itself.
    memory = BASE_BYTES + RAY_BASE_BYTES + actors * ACTOR_BYTES + 2 * sim_memory
    return Estimate(nodes, actors, memory, seconds + actors / ACTOR_STARTS_PER_S, messages)


def host_count(cfg: Config, cpus: int) -> int:
    """The host actors ``placement.place_run`` makes for ``cfg``, counted without placing
    10^7 nodes one by one."""
    t, pack = cfg.topology, cfg.experiment.nodes_per_actor
    # side chains whole on their hosts: the main chain runs in the coordinator, on no host
    if pack == "auto":
        return max(1, min(cpus, t.vpps))
    size = int(pack)
    main = 0 if size >= t.nodes_per_vpp else math.ceil((t.vpps + t.grid_nodes) / size)
    return t.vpps * math.ceil(t.nodes_per_vpp / size) + main


def driver_count(cfg: Config, cpus: int) -> int:
    """The chain drivers ``placement.side_owners`` deals side chains spread over several
    hosts to: none when they run whole, else as many as CPUs (at most one per chain)."""
    t, pack = cfg.topology, cfg.experiment.nodes_per_actor
    if pack == "auto" or int(pack) >= t.nodes_per_vpp:
        return 0
    return min(max(1, cpus), t.vpps)


def check(cfg: Config, runtime: str, machine: Machine, force: bool = False) -> Estimate:
    """The estimate of ``cfg`` on ``machine``; a ConfigError naming the key that makes it too
    big for the machine unless ``force``."""
    est = estimate(cfg, runtime, machine.cpus)
    if force:
        return est
    limit = MEMORY_SHARE * machine.memory
    hosts = host_count(cfg, machine.cpus)
    if runtime == "ray" and hosts > ACTORS_PER_CPU * machine.cpus:
        raise ConfigError("experiment.nodes_per_actor", (
            f"{cfg.experiment.nodes_per_actor} gives {hosts} host actors for "
            f"{machine.cpus} CPUs on {machine.where} (at most {ACTORS_PER_CPU} per CPU): "
            f"{est.describe()}; use 'auto' or a larger pack, or --force"))
    if est.memory > limit:
        key = ("experiment.nodes_per_actor"
               if runtime == "ray" and est.actors * ACTOR_BYTES > est.memory / 2
               else "topology.nodes_per_vpp" if cfg.topology.nodes_per_vpp > cfg.topology.vpps
               else "topology.vpps")
        raise ConfigError(key, (
            f"the run needs {est.describe()}, more than {MEMORY_SHARE:.0%} of the "
            f"{machine.memory / GIB:.1f} GiB available on {machine.where}; make it smaller, "
            "join a bigger cluster (--address), or --force"))
    return est


def check_all(cfgs: Sequence[Config], runtime: str, machine: Machine,
              force: bool = False) -> Estimate:
    """Check every config of a sweep before its first point runs; the largest estimate."""
    estimates = [check(cfg, runtime, machine, force) for cfg in cfgs]
    return max(estimates, key=lambda e: e.memory)


def this_machine() -> Machine:
    """CPUs and available memory of this machine (Linux ``MemAvailable``, else all memory)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return Machine(max(1, cpus or 1), _available_memory())


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
