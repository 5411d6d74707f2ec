"""The NIC and transport model (docs/architecture.md section 6, issue 13): closed forms on tiny topologies,
a property against a naive oracle of the two queues, and reliable transport's resends."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from mlts_ray.net.network import LinkModel, Nics, PartitionWindow, tx_us
from mlts_ray.net.node import Ready
from mlts_ray.net.sim import RETRANSMIT, ChainSim, NodeHost
from test_net import Msg  # the scripted message of the driver's tests

L = 1_000  # latency, us (no jitter)


@dataclass
class Node:
    """Sends ``script[event]`` when it gets ``event``; logs what it gets and when."""

    script: dict = field(default_factory=dict)
    log: list = field(default_factory=list)

    def step(self, event, now_us):
        self.log.append((now_us, event))
        return Ready(sends=list(self.script.get(event, ())))


def sim_of(nodes, up, down, link=None, seed=3) -> ChainSim:
    link = link or LinkModel(float(L), 0.0, 1)
    return ChainSim("vpp-0", nodes, link, seed, 0, 0, nics=Nics(tuple(up), tuple(down)))


@settings(max_examples=80, deadline=None)
@given(m=st.integers(1, 30), size=st.integers(1, 50_000), up=st.integers(10_000, 10**9))
def test_one_broadcast_the_ith_copy_arrives_after_i_transmissions(m, size, up):
    """A broadcast of m copies of b bytes occupies the uplink for m * 8b / up: copy i arrives
    at i * 8b / up + latency (receivers' downlinks unlimited)."""
    msg = Msg("pre-prepare", "block", size)
    nodes = [Node({"go": [(d, msg) for d in range(1, m + 1)]})] + [Node() for _ in range(m)]
    sim = sim_of(nodes, [up] + [0] * m, [0] * (m + 1))
    sim.input(0, "go", 0)
    sim.run()
    for i in range(1, m + 1):
        assert nodes[i].log == [(i * tx_us(size, up) + L, msg)]


def test_two_senders_into_one_downlink_queue_there():
    """Both copies' last bits reach node 2 at the same time; its 1 Mbit/s downlink carries
    one after the other (the first from its first bit on: the links pipeline)."""
    a, b = Msg("prepare", "a", 1_000), Msg("prepare", "b", 1_000)
    nodes = [Node({"go": [(2, a)]}), Node({"go": [(2, b)]}), Node()]
    up, down = 80_000_000, 1_000_000  # tx 100 us up, 8,000 us down
    sim = sim_of(nodes, [up, up, up], [down, down, down])
    sim.input(0, "go", 0)
    sim.input(1, "go", 0)
    sim.run()
    first_bit = L  # both left their uplinks' first bit at 0
    done_a = first_bit + 8_000
    done_b = done_a + 8_000
    assert nodes[2].log == [(done_a, a), (done_b, b)]


def test_a_fast_downlink_adds_nothing_to_a_slow_uplink():
    msg = Msg("commit", "c", 2_500)  # 20 Mbit/s up: 1,000 us; 100 Mbit/s down: 200 us
    nodes = [Node({"go": [(1, msg)]}), Node()]
    sim = sim_of(nodes, [20_000_000, 20_000_000], [100_000_000, 100_000_000])
    sim.input(0, "go", 0)
    sim.run()
    assert nodes[1].log == [(1_000 + L, msg)]


def _naive(sends, up, down, latency):
    """The two queues written out plainly. ``sends``: (time, sender, [(dst, size), ...]) in
    time order, one per sender and time. Returns {(sender, k): delivery time} for the k-th
    copy of each sender."""
    free_up = {}
    copies = []  # (arrival, origin, seq, dst, size, tx_up)
    seq = {}
    for t, src, dsts in sends:
        cursor = max(t, free_up.get(src, 0))
        for dst, size in dsts:
            cursor += tx_us(size, up[src])
            seq[src] = seq.get(src, 0) + 1
            copies.append((cursor + latency, src, seq[src], dst, size, tx_us(size, up[src])))
        free_up[src] = cursor
    free_down, out = {}, {}
    for arrival, src, k, dst, size, tx_up in sorted(copies):
        start = max(arrival - tx_up, free_down.get(dst, 0))
        done = max(arrival, start + tx_us(size, down[dst]))
        free_down[dst] = done
        out[(src, k)] = done
    return out


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_uplink_and_downlink_queues_equal_the_naive_oracle(data):
    n = data.draw(st.integers(2, 5))
    up = data.draw(st.lists(st.integers(100_000, 10**8), min_size=n, max_size=n))
    down = data.draw(st.lists(st.integers(100_000, 10**8), min_size=n, max_size=n))
    plans = []
    for t in sorted(set(data.draw(st.lists(st.integers(0, 50_000), min_size=1, max_size=4)))):
        src = data.draw(st.integers(0, n - 1))
        dsts = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, 5_000)),
                                  min_size=1, max_size=6))
        plans.append((t, src, [(d, s) for d, s in dsts if d != src] or [((src + 1) % n, 7)]))
    nodes = [Node() for _ in range(n)]
    sim = sim_of(nodes, up, down)
    for i, (t, src, dsts) in enumerate(plans):
        msgs = [(d, Msg("p", (i, j), size)) for j, (d, size) in enumerate(dsts)]
        nodes[src].script[("go", i)] = msgs
        sim.input(src, ("go", i), t)
    sim.run()
    # the nodes do no CPU work here (sign/verify 0), so each delivery is stepped when it is in
    want = _naive(plans, up, down, L)
    got = {}
    counters = {}
    for i, (t, src, dsts) in enumerate(plans):
        for j, (dst, size) in enumerate(dsts):
            counters[src] = counters.get(src, 0) + 1
            (when,) = [w for w, ev in nodes[dst].log if ev == Msg("p", (i, j), size)]
            got[(src, counters[src])] = when
    assert got == want


def test_a_lost_copy_is_resent_until_it_gets_through_and_counted_on_the_uplink():
    link = LinkModel(float(L), 0.0, 1, loss=0.5, reliable=True, rto_us=200_000)
    msg = Msg("commit", "c", 100)
    nodes = [Node({"go": [(d, msg) for d in range(1, 41)]})] + [Node() for _ in range(40)]
    sim = sim_of(nodes, [8_000_000] * 41, [0] * 41, link)
    sim.input(0, "go", 0)
    sim.run()
    assert all(len(node.log) == 1 for node in nodes[1:])  # every copy got through, once
    original, resent = sim.phases["commit"], sim.phases[RETRANSMIT]
    assert original.count == 40 and original.dropped > 5
    assert resent.count == original.dropped + resent.dropped  # each loss is resent once
    assert resent.bytes == 100 * resent.count
    assert sim.delivered == 40
    # a resent copy arrives at least one RTO after the first try left
    late = [t for node in nodes[1:] for t, _ in node.log if t > 40 * 100 + L]
    assert len(late) == original.dropped and min(late) >= 200_000


def test_datagram_transport_loses_what_is_lost():
    link = LinkModel(float(L), 0.0, 1, loss=0.5, reliable=False)
    msg = Msg("commit", "c", 100)
    nodes = [Node({"go": [(d, msg) for d in range(1, 41)]})] + [Node() for _ in range(40)]
    sim = sim_of(nodes, [8_000_000] * 41, [0] * 41, link)
    sim.input(0, "go", 0)
    sim.run()
    assert RETRANSMIT not in sim.phases
    assert sim.delivered == 40 - sim.phases["commit"].dropped < 40


def test_a_copy_sent_across_a_partition_arrives_at_the_first_resend_after_it_heals():
    """Partition for the first second; RTO 200 ms doubling: tries leave at 0, 200, 600 and
    1,400 ms; the last is the first after the heal."""
    part = PartitionWindow(0, 1_000_000, {0: 0, 1: 1})
    link = LinkModel(float(L), 0.0, 1, partitions=(part,), reliable=True, rto_us=200_000)
    msg = Msg("prepare", "p", 10)  # 8 Mbit/s: 10 us per try on the uplink
    nodes = [Node({"go": [(1, msg)]}), Node()]
    sim = sim_of(nodes, [8_000_000] * 2, [0] * 2, link)
    sim.input(0, "go", 0)
    sim.run()
    first = 10
    second = first + 200_000 + 10
    third = second + 400_000 + 10
    fourth = third + 800_000 + 10
    assert third < 1_000_000 <= fourth
    assert nodes[1].log == [(fourth + L, msg)]
    assert sim.phases[RETRANSMIT].count == 3 and sim.phases[RETRANSMIT].dropped == 2


def test_windows_over_hosts_equal_one_event_at_a_time_with_resends():
    """Resends are the sender's network events: applied among the window's results in event
    order, they give exactly the sequential run's deliveries."""

    def build():
        link = LinkModel(3_000.0, 1_000.0, 500, loss=0.3, reliable=True, rto_us=2_000)
        rng = random.Random(9)
        nodes = []
        for i in range(6):
            script = {("go", k): [(d, Msg("p", (i, k, d), rng.randint(1, 3_000)))
                                  for d in range(6) if d != i] for k in range(3)}
            nodes.append(Node(script))
        up = [rng.choice([1_000_000, 20_000_000]) for _ in range(6)]
        down = [rng.choice([2_000_000, 100_000_000]) for _ in range(6)]
        sim = sim_of(nodes, up, down, link)
        for i in range(6):
            for k in range(3):
                sim.input(i, ("go", k), 1_000 * k + 37 * i)
        return sim, nodes

    seq_sim, seq_nodes = build()
    seq_sim.run()
    win_sim, win_nodes = build()
    hosts = [NodeHost(0, 0, {i: win_nodes[i] for i in range(6) if i % 3 == h}) for h in range(3)]
    while batch := win_sim.window(500):
        win_sim.apply([hosts[h].process([e for e in batch if e[4] % 3 == h], win_sim.window_end)
                       for h in range(3)])
    assert [n.log for n in win_nodes] == [n.log for n in seq_nodes]
    assert win_sim.phases[RETRANSMIT].count == seq_sim.phases[RETRANSMIT].count > 0
