"""The scale-out model of ``mlts bench`` (``runtime.scale_model``): closed forms on a round
whose every part is known, and the bounds any placement's parallel part keeps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mlts_ray.runtime.scale_model import (RayRound, auto_hosts, busy_s, predict, scale_out,
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


def test_without_ray_the_model_is_amdahls_law_over_the_local_parts():
    got = scale_out(10.0, 9.0, None, CHAINS)
    assert got["predicted_speedup_64"] == round(10 / (1 + 9 / 64), 2)
    assert got["scale_out_model"] == "local" and "ray_sync_s" not in got


@given(st.lists(st.lists(st.floats(0, 5), min_size=4, max_size=4), min_size=1, max_size=3),
       st.lists(st.integers(0, 3), min_size=4, max_size=4))
def test_a_placements_parallel_part_lies_between_the_even_split_and_one_host(calls, hosts):
    chains = [f"vpp-{v}" for v in range(4)]
    work = {f"call-{i}": dict(zip(chains, w, strict=True)) for i, w in enumerate(calls)}
    host_of = dict(zip(chains, hosts, strict=True))
    got = busy_s(work, host_of)
    everything = sum(sum(w) for w in calls)
    slowest = sum(max(w) for w in calls)
    assert slowest - 1e-9 <= got <= everything + 1e-9
    assert got >= everything / len(set(hosts)) - 1e-9
