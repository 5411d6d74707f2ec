"""What a cluster of k CPUs would give, from one round measured here (README, "What a cluster
will give"; ``mlts bench``). Pure arithmetic over measured times, apart from any actor.

A Ray round (``runtime.ray.sides``) is the coordinator's own work and four calls (open,
record, close, end) that every host answers for all its side chains. The record call goes out
with the open call, so a host runs its chains' trading and then their consensus with no pause;
the coordinator, once every host has answered the open call, matches the cross-VPP book and
runs the main chain's instance while the record call is out. Measured in one Ray round on this
machine:

- ``work[call][chain]``: the seconds each chain's part of a call took on its host, as wall
  and as the host thread's CPU time (``cpu``);
- ``wait[call]``: the coordinator's wall from sending the call to every host (or, for a call
  sent before the previous one was answered, from those answers) to the last answer, so the
  waits never overlap;
- ``overlap``: the coordinator's own work while the record call was out (wall and CPU);
- the round's wall at the coordinator.

The open and record calls are *busy* for

    max( max over hosts of (open + record),  the busiest host's open + overlap )

(a host goes on into its consensus; the coordinator starts the book when the last host has
traded), any other call for its busiest host's work. Then ``serial = round - sum(wait)`` (the
coordinator's part outside the calls: the main chain's record, settlement and credit,
anchoring, its rows as record batches) and ``sync = sum(wait) - busy`` with this run's hosts
and walls (what the calls cost beyond their busy time: sending, scheduling, answering), and
for k CPUs

    T(k) = serial + sync + busy(place(k)), from CPU times,

with ``place(k)`` the ``auto`` packing at k CPUs (``placement.place_run``: k hosts, the
coordinator apart), so the model knows which chains would share a host. The k-CPU part uses
CPU times because a host there has a CPU of its own; here two hosts and the coordinator share
two, and a chain's wall also counts the time the others held the CPU.
``speedup(k) = local round / T(k)``.
``serial`` and ``sync`` are taken as they are at this machine's host count: the per-host cost
of sending a call (about 0.1 ms) is left out, so at hundreds of hosts the model flatters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mlts_ray.runtime.placement import place_run


@dataclass(frozen=True, slots=True)
class RayRound:
    round_s: float  # the coordinator's wall of the round
    work_s: Mapping[str, Mapping[str, float]]  # call -> chain -> seconds on its host (wall)
    wait_s: Mapping[str, float]  # call -> coordinator's wall from send to last answer
    host_of: Mapping[str, int]  # chain -> host, as placed in this run
    overlap_s: float = 0.0  # the coordinator's own work while OVERLAPPED was out (wall)
    cpu_s: Mapping[str, Mapping[str, float]] | None = None  # as work_s, CPU time (or: wall)
    overlap_cpu_s: float | None = None  # as overlap_s, CPU time (or: wall)

    @property
    def cpu(self) -> Mapping[str, Mapping[str, float]]:
        return self.work_s if self.cpu_s is None else self.cpu_s

    @property
    def overlap_cpu(self) -> float:
        return self.overlap_s if self.overlap_cpu_s is None else self.overlap_cpu_s


OPEN = "sides_open"  # the call the record call goes out with (runtime.ray.sides)
OVERLAPPED = "sides_record"  # the call the coordinator works through


def busy_s(work_s: Mapping[str, Mapping[str, float]], host_of: Mapping[str, int],
           overlap_s: float = 0.0) -> float:
    """The calls' busy time (module docstring): ``OPEN`` and ``OVERLAPPED`` together, each
    host running one after the other and the coordinator working ``overlap_s`` from the
    last open answer; any other call, its busiest host's work."""
    load: dict[str, dict[int, float]] = {}
    for call, per_chain in work_s.items():
        per_host = load.setdefault(call, {})
        for chain, s in per_chain.items():
            per_host[host_of[chain]] = per_host.get(host_of[chain], 0.0) + s
    opened, recorded = load.pop(OPEN, {}), load.pop(OVERLAPPED, {})
    hosts = opened.keys() | recorded.keys()
    through = max((opened.get(h, 0.0) + recorded.get(h, 0.0) for h in hosts), default=0.0)
    joint = max(through, max(opened.values(), default=0.0) + overlap_s)
    return joint + sum(max(per_host.values(), default=0.0) for per_host in load.values())


def auto_hosts(chains: Sequence[tuple[str, int]], cpus: int) -> dict[str, int]:
    """side chain -> host under the ``auto`` packing at ``cpus`` (``placement.place_run``:
    each side chain whole on one host, the main chain in the coordinator)."""
    return {chain: hs[0] for chain, hs in place_run(chains, "auto", cpus).by_chain.items()}


def predict(ray: RayRound, chains: Sequence[tuple[str, int]], cpus: int) -> float:
    """``T(k)`` above: the round's wall on ``cpus`` CPUs."""
    return serial_s(ray) + sync_s(ray) + busy_s(ray.cpu, auto_hosts(chains, cpus),
                                                ray.overlap_cpu)


def ceiling_s(ray: RayRound, cpus: int) -> float:
    """A lower bound on ``T(k)`` under any placement of whole chains: ``serial`` and ``sync``
    as measured, the coordinator's overlapped work free, and the hosts' CPU time spread
    evenly over the ``cpus`` hosts, none below the costliest chain's own (the calls' busy
    time is at least any host's whole work, a host answering one call after another, and the
    busiest host's is at least the mean and at least any one chain's)."""
    per_chain: dict[str, float] = {}
    for work in ray.cpu.values():
        for chain, s in work.items():
            per_chain[chain] = per_chain.get(chain, 0.0) + s
    spread = max(sum(per_chain.values()) / cpus, max(per_chain.values(), default=0.0))
    return serial_s(ray) + sync_s(ray) + spread


def serial_s(ray: RayRound) -> float:
    return max(0.0, ray.round_s - sum(ray.wait_s.values()))


def sync_s(ray: RayRound) -> float:
    return max(0.0, sum(ray.wait_s.values()) - busy_s(ray.work_s, ray.host_of, ray.overlap_s))


def serial_fraction(ray: RayRound) -> float:
    """The part of the round's wall outside any host's work (``serial + sync``)."""
    return (serial_s(ray) + sync_s(ray)) / ray.round_s


def scale_out(local_round_s: float, local_parallel_s: float, ray: RayRound | None,
              chains: Sequence[tuple[str, int]]) -> dict[str, float | str]:
    """The bench's scale-out keys. ``coordinator_serial_share`` is the local round's part
    outside the side chains' services (``LocalSides.work_s``) over its wall. Without a Ray
    round the prediction is Amdahl's law over the local parts, with no Ray cost at all."""
    serial = max(0.0, local_round_s - local_parallel_s)
    out: dict[str, float | str] = {
        "serial_s": round(serial, 3), "parallel_s": round(local_parallel_s, 3),
        "coordinator_serial_share": round(serial / local_round_s, 4)}
    for k in (16, 64):
        wall = predict(ray, chains, k) if ray else serial + local_parallel_s / k
        out[f"predicted_speedup_{k}"] = round(local_round_s / wall, 2)
    if ray is not None:
        # the ceiling the side chains allow: the same round with the cross-VPP book and the
        # main chain's instance free (what a cheaper main chain could at most give)
        free = dataclasses.replace(ray, overlap_cpu_s=0.0)  # sync still from its walls
        out["predicted_speedup_16_main_free"] = round(
            local_round_s / predict(free, chains, 16), 2)
        # and the most any placement of whole chains could give (``ceiling_s``)
        out["speedup_16_ceiling"] = round(local_round_s / ceiling_s(ray, 16), 2)
        # the curve, for the README's "what to expect at k CPUs"
        out["predicted_speedups"] = " ".join(
            f"{k}:{local_round_s / predict(ray, chains, k):.1f}" for k in (2, 4, 8, 16, 32, 64))
        out |= {"ray_serial_s": round(serial_s(ray), 3), "ray_sync_s": round(sync_s(ray), 3),
                "ray_overlap_s": round(ray.overlap_s, 3),
                "ray_overlap_cpu_s": round(ray.overlap_cpu, 3),
                "ray_parallel_s": round(sum(sum(c.values()) for c in ray.work_s.values()), 3),
                "ray_parallel_cpu_s": round(sum(sum(c.values()) for c in ray.cpu.values()), 3),
                "scale_out_model": "ray"}
    else:
        out["scale_out_model"] = "local"
    return out


def paired_scale_out(local: Sequence[tuple[float, float]], ray: Sequence[RayRound] | None,
                     chains: Sequence[tuple[str, int]]) -> dict[str, float | str]:
    """``scale_out`` for each round measured both ways (``local``: each round's wall and its
    side chains' part; ``ray``: the same rounds on Ray, or None), the round of median
    predicted speed-up at 16 CPUs: one round's local wall is only ever set against the same
    round on Ray (a round's cost follows the day's trading), and one noisy round is not the
    figure. ``predicted_speedup_16_range``: the least and most of the rounds."""
    pairs = zip(local, ray, strict=True) if ray is not None else ((x, None) for x in local)
    each = sorted((scale_out(wall, parallel, r, chains) for (wall, parallel), r in pairs),
                  key=lambda o: o["predicted_speedup_16"])
    out = dict(each[(len(each) - 1) // 2])
    out["predicted_speedup_16_range"] = (f"{each[0]['predicted_speedup_16']}-"
                                         f"{each[-1]['predicted_speedup_16']}")
    return out
