"""The scale-out model of ``mlts bench`` (``runtime.scale_model``): closed forms on a round
whose every part is known, and the bounds any placement's parallel part keeps."""

from __future__ import annotations

import dataclasses
import itertools

from hypothesis import given
from hypothesis import strategies as st

from mlts_ray.runtime.scale_model import (RayRound, auto_hosts, busy_s, ceiling_s,
                                          paired_scale_out, predict, scale_out,
                                          serial_fraction, serial_s, sync_s)

# four side chains of 10 nodes and a main chain of 6 (which runs in the coordinator)
CHAINS = [("vpp-0", 10), ("vpp-1", 10), ("vpp-2", 10), ("vpp-3", 10), ("main", 6)]
WORK = {"sides_record": {"vpp-0": 1.0, "vpp-1": 1.0, "vpp-2": 2.0, "vpp-3": 2.0},
        "sides_close": {"vpp-0": 0.1, "vpp-1": 0.1, "vpp-2": 0.1, "vpp-3": 0.1}}
HERE = {"vpp-0": 0, "vpp-1": 1, "vpp-2": 0, "vpp-3": 1}  # two hosts, 3 s of trading each
# the calls waited 3.2 s and 0.3 s; the coordinator's round was 4 s
RAY = RayRound(4.0, WORK, {"sides_record": 3.2, "sides_close": 0.3}, HERE)


def test_serial_is_the_round_outside_the_calls_and_sync_the_calls_beyond_the_busiest_host():
    assert serial_s(RAY) == 0.5  # 4 - (3.2 + 0.3)
    assert round(serial_fraction(RAY), 9) == 0.8 / 4
    assert busy_s(WORK, HERE) == 3.2  # max(1 + 2, 1 + 2) + max(0.2, 0.2)
    assert round(sync_s(RAY), 9) == 0.3  # 3.5 - 3.2


def test_the_round_at_k_cpus_puts_the_chains_where_auto_packing_would():
    assert auto_hosts(CHAINS, 4) == {"vpp-0": 0, "vpp-1": 1, "vpp-2": 2, "vpp-3": 3}
    assert round(predict(RAY, CHAINS, 4), 9) == 0.8 + 2.0 + 0.1  # the slowest chain per call
    assert round(predict(RAY, CHAINS, 1), 9) == 0.8 + 6.0 + 0.4  # all on one host
    assert round(predict(RAY, CHAINS, 64), 9) == round(predict(RAY, CHAINS, 4), 9)  # 4 chains
    got = scale_out(8.0, 6.4, RAY, CHAINS)  # 8 s locally, 6.4 s of it the side chains
    assert got["predicted_speedup_16"] == round(8.0 / 2.9, 2)
    assert got["coordinator_serial_share"] == 0.2 and got["scale_out_model"] == "ray"


def test_the_coordinators_work_during_the_record_call_bounds_that_call_from_below():
    """The cross-VPP book and the main chain's instance (2.5 s) run while the hosts run the
    side chains' consensus: here the hosts are slower (3 s), at 4 CPUs the coordinator is."""
    overlapped = RayRound(4.0, WORK, {"sides_record": 3.2, "sides_close": 0.3}, HERE, 2.5)
    assert serial_s(overlapped) == 0.5 and round(sync_s(overlapped), 9) == 0.3
    assert round(predict(overlapped, CHAINS, 4), 9) == 0.8 + 2.5 + 0.1
    assert round(predict(overlapped, CHAINS, 1), 9) == 0.8 + 6.0 + 0.4


def _scaled(ray: RayRound, f: float) -> RayRound:
    return RayRound(ray.round_s * f, {c: {k: s * f for k, s in w.items()}
                                      for c, w in ray.work_s.items()},
                    {c: s * f for c, s in ray.wait_s.items()}, ray.host_of, ray.overlap_s * f)


def test_each_rounds_local_wall_is_set_against_the_same_round_on_ray():
    """Three rounds, the second twice and the third three times the first's work, both ways:
    paired round by round, every round predicts the same speed-up (8 / 2.9 at 16 CPUs); the
    figure is the median round's. Paired the wrong way round, they spread."""
    local = [(8.0 * f, 6.4 * f) for f in (1, 2, 3)]
    rays = [_scaled(RAY, f) for f in (1, 2, 3)]
    got = paired_scale_out(local, rays, CHAINS)
    assert got["predicted_speedup_16"] == round(8.0 / 2.9, 2)
    assert got["predicted_speedup_16_range"] == "2.76-2.76"
    spread = paired_scale_out(local, rays[::-1], CHAINS)
    assert spread["predicted_speedup_16_range"] == f"{round(8 / 8.7, 2)}-{round(24 / 2.9, 2)}"
    assert spread["predicted_speedup_16"] == round(16 / 5.8, 2)  # the middle round, paired
    assert paired_scale_out(local, None, CHAINS)["scale_out_model"] == "local"


def test_without_ray_the_model_is_amdahls_law_over_the_local_parts():
    got = scale_out(10.0, 9.0, None, CHAINS)
    assert got["predicted_speedup_64"] == round(10 / (1 + 9 / 64), 2)
    assert got["scale_out_model"] == "local" and "ray_sync_s" not in got


def test_a_host_goes_on_from_trading_into_its_consensus_and_the_book_waits_for_the_last_trader():
    """The record call goes out with the open call: each host runs its chains' trading, then
    their consensus, with no barrier between; the coordinator starts the cross-VPP book (and
    the main chain's instance, ``overlap``) when the last host has traded."""
    work = {"sides_open": {"vpp-0": 2.0, "vpp-1": 0.5},
            "sides_record": {"vpp-0": 0.5, "vpp-1": 2.0}}
    hosts = {"vpp-0": 0, "vpp-1": 1}
    # each host 2.5 s through both calls, not 2 + 2 (each call's busiest host, summed)
    assert busy_s(work, hosts) == 2.5
    assert busy_s(work, hosts, 0.4) == 2.5  # the book and main instance end at 2.4 s
    assert busy_s(work, hosts, 1.0) == 3.0  # now they end last: 2 s of trading, then 1 s
    assert busy_s(work, {"vpp-0": 0, "vpp-1": 0}, 1.0) == 5.0  # one host does it all


def test_k_cpus_are_predicted_from_cpu_time_and_the_calls_cost_from_this_runs_walls():
    """Here the chains' walls hold time the hosts waited for a CPU (two hosts and the
    coordinator on two cores); at k CPUs each host has its own, so the prediction takes CPU
    time, while what the calls cost beyond the hosts' work is measured against the walls."""
    cpu = {call: {c: s / 2 for c, s in per_chain.items()} for call, per_chain in WORK.items()}
    ray = RayRound(4.0, WORK, {"sides_record": 3.2, "sides_close": 0.3}, HERE, 2.5, cpu, 1.0)
    assert serial_s(ray) == 0.5 and round(sync_s(ray), 9) == 0.3  # from the walls, as before
    # 4 CPUs: the slowest chain's 1 s of CPU in the record call, the book's 1 s beside it
    assert round(predict(ray, CHAINS, 4), 9) == 0.8 + 1.0 + 0.05
    assert round(predict(ray, CHAINS, 1), 9) == 0.8 + 3.0 + 0.2
    got = scale_out(8.0, 6.4, ray, CHAINS)
    assert got["ray_parallel_cpu_s"] == 3.2
    # 2 CPUs: two hosts of 1.5 s of CPU each (1 + 0.5) and 0.1 s of close; 4 and up: 1.05 s
    assert got["predicted_speedups"] == " ".join(
        [f"2:{8 / 2.4:.1f}"] + [f"{k}:{8 / 1.85:.1f}" for k in (4, 8, 16, 32, 64)])
    # with the book and main instance free the record call waits for the slowest chain alone
    assert got["predicted_speedup_16"] == round(8.0 / 1.85, 2)
    assert got["predicted_speedup_16_main_free"] == round(8.0 / 1.85, 2)
    slow_main = dataclasses.replace(ray, overlap_cpu_s=1.5)
    assert scale_out(8.0, 6.4, slow_main, CHAINS)["predicted_speedup_16"] == round(8.0 / 2.35, 2)
    assert scale_out(8.0, 6.4, slow_main, CHAINS)["predicted_speedup_16_main_free"] \
        == round(8.0 / 1.85, 2)
    # the ceiling: 3.2 s of CPU over 16 hosts is below the costliest chain's 1.05 s
    assert round(ceiling_s(slow_main, 16), 9) == round(0.8 + 1.05, 9)
    assert round(ceiling_s(slow_main, 2), 9) == round(0.8 + 1.6, 9)
    assert got["speedup_16_ceiling"] == round(8.0 / 1.85, 2)


@given(st.lists(st.lists(st.floats(0, 5), min_size=4, max_size=4), min_size=2, max_size=3),
       st.lists(st.integers(0, 3), min_size=4, max_size=4), st.floats(0, 5),
       st.integers(1, 8))
def test_no_placement_beats_the_ceiling(calls, hosts, overlap, cpus):
    """Against a naive oracle: every way of putting the four chains on ``cpus`` hosts."""
    names = ["sides_open", "sides_record", "sides_close"]
    chains = [f"vpp-{v}" for v in range(4)]
    work = {names[i]: dict(zip(chains, w, strict=True)) for i, w in enumerate(calls)}
    ray = RayRound(9.0, work, {"sides_record": 8.0}, dict(zip(chains, hosts, strict=True)),
                   overlap)
    fixed = serial_s(ray) + sync_s(ray)
    best = min(busy_s(work, dict(zip(chains, placed, strict=True)), overlap)
               for placed in itertools.product(range(cpus), repeat=4))
    assert ceiling_s(ray, cpus) <= fixed + best + 1e-9


@given(st.lists(st.lists(st.floats(0, 5), min_size=4, max_size=4), min_size=1, max_size=3),
       st.lists(st.integers(0, 3), min_size=4, max_size=4), st.floats(0, 5))
def test_a_placements_parallel_part_lies_between_the_even_split_and_one_host(calls, hosts,
                                                                          overlap):
    names = ["sides_open", "sides_record", "sides_close"]
    chains = [f"vpp-{v}" for v in range(4)]
    work = {names[i]: dict(zip(chains, w, strict=True)) for i, w in enumerate(calls)}
    host_of = dict(zip(chains, hosts, strict=True))
    got = busy_s(work, host_of, overlap)
    everything = sum(sum(w) for w in calls)
    # a chain's open and record run back to back; every other call waits for its slowest
    through = max(sum(w[c] for w in calls[:2]) for c in range(4))
    slowest = through + sum(max(w) for w in calls[2:])
    assert slowest - 1e-9 <= got <= everything + overlap + 1e-9
    assert got >= max(calls[0]) + overlap - 1e-9  # the book waits for the last trader
    assert got >= everything / len(set(hosts)) - 1e-9
