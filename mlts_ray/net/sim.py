"""Discrete-event driver of one chain: delivers messages and timers to sans-I/O nodes.

Event order is ``(time, priority, origin, seq)``: ``origin`` is the sending (or timer-setting)
node's index and ``seq`` that node's own counter. That is the SimPy rule with one counter per
node instead of one per simulator, so the order never depends on how nodes are spread over
processes -- the property the Ray runtime's conservative windows rely on.

Each node has a simulated CPU: an event that arrives while the node is busy waits, and the
node's signing and verification work (``Ready.signs``/``verifies``) is charged before anything it
sends leaves. Nodes handle their own votes internally and never address themselves.

Two ways to run, with the same result for protocols whose every message and timer takes at
least ``width`` (the lookahead): :meth:`ChainSim.run` processes one event at a time;
:meth:`ChainSim.window` hands out every event of a conservative window ``[t, t + width)`` at
once, so the nodes -- spread over :class:`NodeHost` objects, in this process or in Ray actors --
can process it in parallel, and :meth:`ChainSim.apply` takes their results back. Nothing sent
inside a window can arrive inside it, so each node sees exactly the same events in the same
order either way.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from mlts_ray.net.network import LinkModel
from mlts_ray.net.node import Node, Ready, Timer
from mlts_ray.net.rng import stream

PRIO_INPUT, PRIO_DELIVERY, PRIO_TIMER = 0, 1, 2

# A queue entry, handed to hosts as it is: (time, priority, origin, seq, node, event); its
# first four fields are unique, so entries sort by them alone.
Event = tuple[int, int, int, int, int, Any]
DST, EVENT = 4, 5
Result = tuple[Event, int, Ready]  # (entry, done time, what the node returned)


@dataclass(slots=True)
class PhaseStats:
    count: int = 0
    bytes: int = 0
    dropped: int = 0


@dataclass(slots=True)
class Observation:
    time_us: int
    node: int
    value: Any


class Processed(NamedTuple):
    """What a host did with a window: the results that send, set timers or observe something
    (in event order), and the totals of the rest -- most deliveries (a vote after its quorum)
    only cost their node CPU time, and shipping a result for each would double the work."""

    results: list[Result]
    delivered: int
    signs: int
    verifies: int


@dataclass(slots=True)
class NodeHost:
    """Runs some nodes' state machines and their simulated CPUs (busy-until per node)."""

    sign_us: int
    verify_us: int
    nodes: dict[int, Node] = field(default_factory=dict)
    busy: dict[int, int] = field(default_factory=dict)

    def process(self, events: list[Event]) -> Processed:
        """Step each event's node, in the given (key) order; an event that arrives while its
        node is busy starts when the node is free."""
        out: list[Result] = []
        nodes, busy, sign_us, verify_us = self.nodes, self.busy, self.sign_us, self.verify_us
        delivered = signs = verifies = 0
        delivery = PRIO_DELIVERY
        for entry in events:
            t, dst = entry[0], entry[DST]
            start = busy.get(dst, 0)
            if t > start:
                start = t
            ready = nodes[dst].step(entry[EVENT], start)
            if entry[1] == delivery:
                delivered += 1
            if ready is None:
                busy[dst] = start
                continue
            signs += ready.signs
            verifies += ready.verifies
            busy[dst] = done = start + ready.signs * sign_us + ready.verifies * verify_us
            if ready.sends or ready.timers or ready.outputs:
                out.append((entry, done, ready))
        return Processed(out, delivered, signs, verifies)


@dataclass(slots=True)
class ChainSim:
    chain: str
    nodes: Sequence[Node] | None  # None: the nodes live in hosts elsewhere (size via n_nodes)
    link: LinkModel
    seed: int
    sign_us: int
    verify_us: int
    epoch: int = 0  # e.g. the round: each gets fresh network randomness
    n_nodes: int = 0
    now_us: int = 0
    delivered: int = 0
    signs: int = 0
    verifies: int = 0
    phases: dict[str, PhaseStats] = field(default_factory=dict)
    observations: list[Observation] = field(default_factory=list)
    host: NodeHost | None = None
    _queue: list[tuple] = field(default_factory=list)
    _seq: list[int] = field(default_factory=list)
    _rngs: dict[int, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.nodes is not None:
            self.n_nodes = len(self.nodes)
            self.host = NodeHost(self.sign_us, self.verify_us, dict(enumerate(self.nodes)))
        self._seq = [0] * self.n_nodes

    def _next_seq(self, node: int) -> int:
        self._seq[node] += 1
        return self._seq[node]

    def input(self, node: int, event: Any, at_us: int) -> None:
        """Hand ``event`` to ``node`` at ``at_us`` from outside the network (round start)."""
        heapq.heappush(self._queue, (at_us, PRIO_INPUT, node, self._next_seq(node), node, event))

    def _rng(self, node: int):
        rng = self._rngs.get(node)
        if rng is None:
            rng = self._rngs[node] = stream(self.seed, "net", self.chain, self.epoch, node)
        return rng

    def _apply_one(self, entry: Event, done: int, ready: Ready) -> None:
        src = entry[DST]  # the node that handled the event is the source of what follows
        for value in ready.outputs:
            self.observations.append(Observation(done, src, value))
        for delay, token in ready.timers:
            heapq.heappush(
                self._queue, (done + delay, PRIO_TIMER, src, self._next_seq(src), src, Timer(token))
            )
        if ready.sends:
            self._send(src, done + ready.hold_us, ready.sends)

    def _send(self, src: int, depart: int, sends: list[tuple[int, Any]]) -> None:
        """The hot path: per message, its size, phase and transmission time once (and its copies
        counted in one go); per copy, the sender's latency draw (then its loss draw) in send
        order, as ``LinkModel.delay_us`` and ``LinkModel.dropped`` define them."""
        link, queue, push = self.link, self._queue, heapq.heappush
        rng = self._rng(src)
        gauss, base, jitter, floor = rng.gauss, link.base_us, link.jitter_us, link.min_us
        lossless, n = link.lossless, self._seq[src]
        last, stats, size, tx, copies = None, None, 0, 0, 0
        for dst, msg in sends:
            if msg is not last:
                if copies:
                    stats.count += copies
                    stats.bytes += copies * size
                last, copies = msg, 0
                stats, size, tx = self._measure(msg)
            copies += 1
            latency = round(base + gauss(0.0, jitter))
            if latency < floor:
                latency = floor
            if not lossless and link.dropped(rng, depart, src, dst):
                stats.dropped += 1
                continue
            n += 1
            push(queue, (depart + latency + tx, PRIO_DELIVERY, src, n, dst, msg))
        if copies:
            stats.count += copies
            stats.bytes += copies * size
        self._seq[src] = n

    def _measure(self, msg: Any) -> tuple[PhaseStats, int, int]:
        """The phase counters, encoded size and transmission time of a message."""
        size = len(msg.encode())
        stats = self.phases.get(msg.phase)
        if stats is None:
            stats = self.phases[msg.phase] = PhaseStats()
        return stats, size, self.link.transmission_us(size)

    def _pop(self) -> Event:
        entry = heapq.heappop(self._queue)
        self.now_us = entry[0]
        return entry

    def run(self, until_us: int | None = None, stop: Callable[[], bool] | None = None) -> None:
        """Process events one at a time, in order, up to ``until_us`` (inclusive), or until
        ``stop()`` holds."""
        queue = self._queue
        while queue and (until_us is None or queue[0][0] <= until_us):
            self.apply([self.host.process([self._pop()])], ordered=True)
            if stop is not None and stop():
                break

    def window(self, width_us: int) -> list[Event]:
        """Every event of the next conservative window ``[t, t + width_us)``, where ``t`` is the
        earliest pending event (an idle stretch is skipped); [] when nothing is pending."""
        queue, out, pop = self._queue, [], heapq.heappop
        if queue:
            end = queue[0][0] + width_us
            while queue and queue[0][0] < end:
                out.append(pop(queue))
            self.now_us = out[-1][0]
        return out

    def apply(self, batches: list[Processed], ordered: bool = False) -> None:
        """Take back what the hosts did with a window; their results are applied in event
        order (``ordered``: a single host's already are)."""
        results: list[Result] = []
        for batch in batches:
            self.delivered += batch.delivered
            self.signs += batch.signs
            self.verifies += batch.verifies
            results.extend(batch.results)
        if not ordered:
            results.sort(key=lambda r: r[0])
        for result in results:
            self._apply_one(*result)

    def run_windows(self, width_us: int) -> None:
        """Run to the end window by window, with the nodes of this process's host."""
        while batch := self.window(width_us):
            self.apply([self.host.process(batch)], ordered=True)

    def sorted_observations(self) -> list[Observation]:
        """Observations by (time, node), each node's in its own order: the same list however
        the nodes were spread over hosts."""
        return sorted(self.observations, key=lambda o: (o.time_us, o.node))

    @property
    def pending(self) -> int:
        return len(self._queue)
