"""What a cluster of k CPUs would give, from one round measured here (README, "What a cluster
will give"; ``mlts bench``). Pure arithmetic over measured times, apart from any actor.

A Ray round (``runtime.ray_sides``) is the coordinator's own work -- the cross-VPP book and
contracts, the main chain's instance, record, settlement and credit, anchoring -- and three
calls (trade, close, end) that every host answers for all its side chains. Measured in one
Ray round on this machine:

- ``work[call][chain]``: the seconds each chain's part of a call took on its host;
- ``wait[call]``: the coordinator's wall from sending the call to every host to the last
  answer;
- the round's wall at the coordinator.

Then ``serial = round - sum(wait)`` (the coordinator's part, the main chain's instance
included), ``sync = sum(wait) - parallel(placement here)`` (what a call costs beyond its
slowest host's work: sending, scheduling, answering, imbalance within a call), and for k CPUs

    T(k) = serial + sync + parallel(place(k)),
    parallel(p) = sum over calls of the busiest host's work under placement p,

with ``place(k)`` the ``auto`` packing at k CPUs (``runtime.placement``), so the model knows
which chains would share a host. ``speedup(k) = local round / T(k)``. ``serial`` and ``sync``
are taken as they are at this machine's host count: the per-host cost of sending a call
(about 0.1 ms) is left out, so at hundreds of hosts the model flatters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mlts_ray.runtime.placement import place


@dataclass(frozen=True, slots=True)
class RayRound:
    round_s: float  # the coordinator's wall of the round
    work_s: Mapping[str, Mapping[str, float]]  # call -> chain -> seconds on its host
    wait_s: Mapping[str, float]  # call -> coordinator's wall from send to last answer
    host_of: Mapping[str, int]  # chain -> host, as placed in this run


def parallel_s(work_s: Mapping[str, Mapping[str, float]], host_of: Mapping[str, int]) -> float:
    """Each call's busiest host's work, summed over the calls."""
    total = 0.0
    for per_chain in work_s.values():
        load: dict[int, float] = {}
        for chain, s in per_chain.items():
            load[host_of[chain]] = load.get(host_of[chain], 0.0) + s
        total += max(load.values(), default=0.0)
    return total


def auto_hosts(chains: Sequence[tuple[str, int]], cpus: int) -> dict[str, int]:
    """chain -> host under the ``auto`` packing at ``cpus`` (each chain whole on one host)."""
    return {chain: hs[0] for chain, hs in place(chains, "auto", cpus).by_chain.items()}


def predict(ray: RayRound, chains: Sequence[tuple[str, int]], cpus: int) -> float:
    """``T(k)`` above: the round's wall on ``cpus`` CPUs."""
    return serial_s(ray) + sync_s(ray) + parallel_s(ray.work_s, auto_hosts(chains, cpus))


def serial_s(ray: RayRound) -> float:
    return max(0.0, ray.round_s - sum(ray.wait_s.values()))


def sync_s(ray: RayRound) -> float:
    return max(0.0, sum(ray.wait_s.values()) - parallel_s(ray.work_s, ray.host_of))


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
        out |= {"ray_serial_s": round(serial_s(ray), 3), "ray_sync_s": round(sync_s(ray), 3),
                "ray_parallel_s": round(sum(sum(c.values()) for c in ray.work_s.values()), 3),
                "scale_out_model": "ray"}
    else:
        out["scale_out_model"] = "local"
    return out
