"""Conservative windows (docs/architecture.md section 7): running a chain's nodes window by window -- spread
over several hosts -- gives exactly what running them one event at a time gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mlts_ray.config import build_config
from mlts_ray.ledger import Identity, KeyRing, Trade
from mlts_ray.ledger.block import ZERO_HASH, BlockKind
from mlts_ray.mlts.consensus_round import (
    build_instance,
    build_nodes,
    new_sim,
    read_outcome,
    start,
    window_width,
)
from mlts_ray.net.network import ms_to_us
from mlts_ray.net.sim import DST, NodeHost
from mlts_ray.population.registry import consensus_faulty, wrappers
from mlts_ray.results.oracle import judge

BEHAVIOURS = list(consensus_faulty())


def _setup(seed, n, algorithm, faulty, loss):
    cfg = build_config({
        "experiment": {"seed": seed},
        "consensus": {"algorithm": algorithm, "view_timeout_ms": 60},
        "network": {"loss": loss, "intra_jitter_ms": 6},
    })
    names = tuple(f"vpp-0/n-{i:03d}" for i in range(n))
    ids = {name: Identity.derive(seed, name) for name in names}
    keys = KeyRing.of(ids.values())
    k = n if algorithm == "pbft" else max(4, n // 2)
    inst = build_instance(cfg, "vpp-0", 0, 0, BlockKind.SIDE, ZERO_HASH, ZERO_HASH, names,
                          names[:k], names[-1], keys, certify=algorithm != "pbft")
    trades = [Trade("vpp-0", 0, names[1], names[2], "vpp-0", "vpp-0", 100 + i, 10, f"b{i}",
                    f"s{i}").sign(ids[names[1]], ids[names[2]]).encode() for i in range(3)]
    behaviours = {names[i]: b for i, b in faulty.items()}
    return cfg, inst, ids, behaviours, trades


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([4, 7, 10]), st.sampled_from(["pbft", "dce-pbft"]),
       st.dictionaries(st.integers(0, 3), st.sampled_from(BEHAVIOURS), max_size=2),
       st.sampled_from([0.0, 0.1]), st.integers(1, 4))
def test_windows_over_several_hosts_equal_one_event_at_a_time(seed, n, algorithm, faulty, loss, hosts):
    cfg, inst, ids, behaviours, trades = _setup(seed, n, algorithm, faulty, loss)
    delay = ms_to_us(cfg.faults.delay_ms)

    nodes = build_nodes(inst, range(n), ids.__getitem__, wrappers(behaviours), delay)
    one = new_sim(cfg, inst, False, [nodes[i] for i in range(n)])
    start(one, inst, trades)
    one.run()  # exact: one event at a time

    # The same instance with fresh nodes spread round-robin over `hosts` NodeHosts.
    fresh = build_nodes(inst, range(n), ids.__getitem__, wrappers(behaviours), delay)
    many = new_sim(cfg, inst, False, None)
    spread = [NodeHost(many.sign_us, many.verify_us) for _ in range(hosts)]
    for i, node in fresh.items():
        spread[i % hosts].nodes[i] = node
    start(many, inst, trades)
    width = window_width(many, inst)
    while batch := many.window(width):
        many.apply([host.process([e for e in batch if e[DST] % hosts == h], many.window_end)
                    for h, host in enumerate(spread)])

    assert one.sorted_observations() == many.sorted_observations()
    assert (one.phases, one.delivered, one.signs, one.verifies) == \
        (many.phases, many.delivered, many.signs, many.verifies)
    a, b = read_outcome(inst, one), read_outcome(inst, many)
    assert (a.block, a.trace, a.proven) == (b.block, b.trace, b.proven)
    assert judge(a, behaviours) == judge(b, behaviours)
