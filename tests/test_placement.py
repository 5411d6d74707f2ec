"""Placement policy (pure, no Ray): every node on exactly one host, whole chains under ``auto``,
``ceil(N / n)`` hosts per chain otherwise, and ``hosts_of`` equal to a naive scan."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from mlts_ray.runtime.placement import place, side_owners

chains_st = st.lists(st.integers(1, 40), min_size=1, max_size=8).map(
    lambda sizes: [(f"vpp-{i}", n) for i, n in enumerate(sizes)]
)
packing_st = st.one_of(st.just("auto"), st.integers(1, 50))


def _naive_hosts_of(placement, chain):
    return sorted({h for (c, _), h in placement.host_of.items() if c == chain})


@given(chains_st, packing_st, st.integers(1, 8))
def test_every_node_lives_on_exactly_one_host(chains, packing, cpus):
    p = place(chains, packing, cpus)
    listed = [node for plan in p.hosts for node in plan.nodes]
    assert sorted(listed) == sorted((c, i) for c, n in chains for i in range(n))
    assert len(listed) == len(set(listed))
    assert all(p.host_of[node] == plan.host for plan in p.hosts for node in plan.nodes)
    for chain, _ in chains:
        assert p.hosts_of(chain) == _naive_hosts_of(p, chain)


@given(chains_st, st.integers(1, 8))
def test_auto_deals_whole_chains_to_one_host_per_cpu(chains, cpus):
    p = place(chains, "auto", cpus)
    assert len(p.hosts) == min(cpus, len(chains))
    for chain, _ in chains:
        assert len(p.hosts_of(chain)) == 1
    # Biggest first to the least-loaded host: no host carries more than the lightest one
    # plus the biggest chain.
    loads = [len(plan.nodes) for plan in p.hosts]
    assert max(loads) - min(loads) <= max(n for _, n in chains)


@given(chains_st, st.integers(1, 50))
def test_fixed_packing_gives_each_chain_its_own_group_of_hosts(chains, per_actor):
    p = place(chains, per_actor, 2)
    for chain, n in chains:
        hosts = p.hosts_of(chain)
        assert len(hosts) == math.ceil(n / per_actor)
        assert p.groups[chain] == hosts
        assert all(len(p.hosts[h].nodes) <= per_actor for h in hosts)


def test_one_node_per_actor_is_one_host_per_node():
    p = place([("vpp-0", 3), ("main", 2)], 1, 2)
    assert [plan.nodes for plan in p.hosts] == [
        (("vpp-0", 0),), (("vpp-0", 1),), (("vpp-0", 2),), (("main", 0),), (("main", 1),)]


@given(chains_st, packing_st, st.integers(1, 8))
def test_each_side_chain_has_one_owner_its_host_when_whole_else_a_chain_driver(chains, packing,
                                                                              cpus):
    """``side_owners``: a chain run whole is owned by its host; spread chains are dealt in
    order to ``min(cpus, spread)`` drivers, numbered after the hosts, none idle."""
    p = place(chains, packing, cpus)
    names = [c for c, _ in chains]
    owner_of, drivers = side_owners(p, names, cpus)
    spread = [c for c in names if len(p.hosts_of(c)) > 1]
    assert drivers == min(cpus, len(spread))
    for chain in names:
        if chain in spread:
            assert owner_of[chain] == len(p.hosts) + spread.index(chain) % drivers
        else:
            assert [owner_of[chain]] == p.hosts_of(chain)
    assert {owner_of[c] for c in spread} == set(range(len(p.hosts), len(p.hosts) + drivers))
