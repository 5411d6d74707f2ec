"""Discrete-event driver of one chain: delivers messages and timers to sans-I/O nodes.

Event order is ``(time, priority, origin, seq)``: ``origin`` is the sending (or timer-setting)
node's index and ``seq`` that node's own counter. That is the SimPy rule with one counter per
node instead of one per simulator, so the order never depends on how nodes are spread over
processes -- the property the Ray runtime's conservative windows rely on.

Each node has a simulated CPU: an event that arrives while the node is busy waits, and the
node's signing and verification work (``Ready.signs``/``verifies``) is charged before anything it
sends leaves. Nodes handle their own votes internally and never address themselves.

Each node also has a NIC (``net.network``): its uplink is the sender's state, kept here where
sends are applied in event order; its downlink is the receiver's, kept by the host that runs it,
which sees the node's deliveries in event order. A copy's event time is when its last bit reaches
the receiver; the host adds the downlink's queueing, then the CPU's. Resends of lost copies
(reliable transport) are network events of the sender, applied here among the results in event
order, never handed to a host.

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

from mlts_ray.net.network import LinkModel, Nics, tx_us
from mlts_ray.net.node import Node, Ready, Timer
from mlts_ray.net.rng import stream

PRIO_INPUT, PRIO_DELIVERY, PRIO_TIMER, PRIO_RESEND = 0, 1, 2, 3

# A queue entry, handed to hosts as it is: (time, priority, origin, seq, node, event), and for
# a delivery also the copy's uplink and downlink transmission times; the first four fields are
# unique, so entries sort by them alone.
Event = tuple
DST, EVENT, TX_UP, TX_DOWN = 4, 5, 6, 7
RETRANSMIT = "retransmit"  # the messages-table phase of resent copies
Result = tuple[Event, int, Ready]  # (entry, done time, what the node returned)


@dataclass(slots=True)
class PhaseStats:
    count: int = 0
    bytes: int = 0
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class Resend:
    """A lost copy its sender sends again (reliable transport)."""

    dst: int
    msg: Any
    tries: int
    size: int
    tx_down: int


@dataclass(slots=True)
class Observation:
    time_us: int
    node: int
    value: Any


class Processed(NamedTuple):
    """What a host did with a window: the results that send, set timers or observe something
    (in event order), and the totals of the rest -- most deliveries (a vote after its quorum)
    only cost their node CPU time, and shipping a result for each would double the work.
    ``deferred``: copies still coming down a downlink when the window ends, re-keyed to when
    they are in, for the chain's queue."""

    results: list[Result]
    delivered: int
    signs: int
    verifies: int
    deferred: list[Event] = []


@dataclass(slots=True)
class NodeHost:
    """Runs some nodes' state machines, their simulated CPUs (busy-until per node) and their
    downlinks (free-at per node)."""

    sign_us: int
    verify_us: int
    nodes: dict[int, Node] = field(default_factory=dict)
    busy: dict[int, int] = field(default_factory=dict)
    downlink: dict[int, int] = field(default_factory=dict)

    def process(self, events: list[Event], end_us: int) -> Processed:
        """Step each event's node in key order, for the window that ends at ``end_us``.

        A copy's event time is when its last bit arrives; it is in once the receiver's
        downlink has also carried it after the copies before it (from its first bit on: the
        links pipeline). A copy that is in later than it arrived is re-keyed to that time, so
        the node's other events (a timer, a smaller message) are not held behind it: handled
        here if still inside the window, else handed back in ``deferred``. An event that
        arrives while its node is busy starts when the node is free."""
        out: list[Result] = []
        nodes, busy, sign_us, verify_us = self.nodes, self.busy, self.sign_us, self.verify_us
        downlink, later, deferred = self.downlink, [], []
        delivered = signs = verifies = 0
        delivery, i, count = PRIO_DELIVERY, 0, len(events)
        while True:
            if later and (i == count or later[0] < events[i]):
                entry = heapq.heappop(later)
            elif i < count:
                entry = events[i]
                i += 1
            else:
                break
            t, dst = entry[0], entry[DST]
            if entry[1] == delivery:
                tx = entry[TX_DOWN]
                if tx:
                    first = t - entry[TX_UP]
                    free = downlink.get(dst, 0)
                    done = (free if free > first else first) + tx
                    if done > t:
                        downlink[dst] = done
                        moved = (done, delivery, entry[2], entry[3], dst, entry[EVENT], 0, 0)
                        if done < end_us:
                            heapq.heappush(later, moved)
                        else:
                            deferred.append(moved)
                        continue
                    downlink[dst] = t
                delivered += 1
            start = busy.get(dst, 0)
            if t > start:
                start = t
            ready = nodes[dst].step(entry[EVENT], start)
            if ready is None:
                busy[dst] = start
                continue
            signs += ready.signs
            verifies += ready.verifies
            busy[dst] = done = start + ready.signs * sign_us + ready.verifies * verify_us
            if ready.sends or ready.timers or ready.outputs:
                out.append((entry, done, ready))
        return Processed(out, delivered, signs, verifies, deferred)


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
    nics: Nics | None = None  # None: links of unlimited rate
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
    window_end: int = 0  # where the last window handed out ends
    _uplink: list[int] = field(default_factory=list)  # node -> its uplink is free at
    _resends: list[Event] = field(default_factory=list)  # popped with a window, applied after
    # what the driver observes of each message a node puts on the wire (once per message,
    # whatever its copies), or None: e.g. ``consensus.conduct.SentViewChanges``
    on_sent: Callable[[int, Any], Any] | None = None

    def __post_init__(self) -> None:
        if self.nodes is not None:
            self.n_nodes = len(self.nodes)
            self.host = NodeHost(self.sign_us, self.verify_us, dict(enumerate(self.nodes)))
        self._seq = [0] * self.n_nodes
        self._uplink = [0] * self.n_nodes
        if self.nics is not None and len(self.nics.up_bps) != self.n_nodes:
            raise ValueError(f"{self.chain}: {len(self.nics.up_bps)} NICs for {self.n_nodes} nodes")

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

    def _apply_one(self, entry: Event, done: int, ready: Ready | None) -> None:
        src = entry[DST]  # the node that handled the event is the source of what follows
        if ready is None:  # a resend of a lost copy
            self._resend(src, entry[0], entry[EVENT])
            return
        for value in ready.outputs:
            self.observations.append(Observation(done, src, value))
        for delay, token in ready.timers:
            heapq.heappush(
                self._queue, (done + delay, PRIO_TIMER, src, self._next_seq(src), src, Timer(token))
            )
        if ready.sends:
            self._send(src, done + ready.hold_us, ready.sends)

    def _send(self, src: int, depart: int, sends: list[tuple[int, Any]]) -> None:
        """The hot path: per message, its size, phase and transmission times once (and its
        copies counted in one go); per copy, its turn on the sender's uplink, then the sender's
        latency draw (then its loss draw) in send order, as ``LinkModel`` defines them."""
        link, queue, push = self.link, self._queue, heapq.heappush
        rng = self._rng(src)
        gauss, base, jitter, floor = rng.gauss, link.base_us, link.jitter_us, link.min_us
        lossless, n = link.lossless, self._seq[src]
        up, down = self._rates(src)
        cursor = self._uplink[src]
        if depart > cursor:
            cursor = depart
        last, stats, size, tx_up, tx_down, copies = None, None, 0, 0, {}, 0
        for dst, msg in sends:
            if msg is not last:
                if copies:
                    stats.count += copies
                    stats.bytes += copies * size
                last, copies = msg, 0
                stats, size = self._measure(msg)
                if self.on_sent is not None:
                    self._observe_sent(src, depart, msg)
                tx_up = tx_us(size, up) if up else 0
                tx_down = {}
            copies += 1
            cursor += tx_up  # the copy's last bit leaves the uplink
            latency = round(base + gauss(0.0, jitter))
            if latency < floor:
                latency = floor
            rate = down[dst] if down else 0
            tx = tx_down.get(rate)
            if tx is None:
                tx = tx_down[rate] = tx_us(size, rate) if rate else 0
            if not lossless and link.dropped(rng, cursor, src, dst):
                stats.dropped += 1
                if link.reliable:
                    n += 1
                    push(queue, (cursor + link.resend_after_us(1), PRIO_RESEND, src, n, src,
                                 Resend(dst, msg, 1, size, tx)))
                continue
            n += 1
            push(queue, (cursor + latency, PRIO_DELIVERY, src, n, dst, msg, tx_up, tx))
        if copies:
            stats.count += copies
            stats.bytes += copies * size
        self._seq[src] = n
        self._uplink[src] = cursor

    def _resend(self, src: int, at: int, r: Resend) -> None:
        """A lost copy goes through the sender's uplink again (TCP's retransmission): counted
        as a ``retransmit`` message, lost again with the same odds, resent after a longer RTO."""
        link, rng = self.link, self._rng(src)
        up, _ = self._rates(src)
        tx_up = tx_us(r.size, up) if up else 0
        leave = max(at, self._uplink[src]) + tx_up
        self._uplink[src] = leave
        stats = self.phases.get(RETRANSMIT)
        if stats is None:
            stats = self.phases[RETRANSMIT] = PhaseStats()
        stats.count += 1
        stats.bytes += r.size
        latency = link.latency_us(rng)
        seq = self._next_seq(src)
        if link.dropped(rng, leave, src, r.dst):
            stats.dropped += 1
            heapq.heappush(self._queue, (leave + link.resend_after_us(r.tries + 1), PRIO_RESEND,
                                         src, seq, src, Resend(r.dst, r.msg, r.tries + 1, r.size,
                                                               r.tx_down)))
            return
        heapq.heappush(self._queue, (leave + latency, PRIO_DELIVERY, src, seq, r.dst, r.msg,
                                     tx_up, r.tx_down))

    def _rates(self, src: int) -> tuple[int, tuple[int, ...] | None]:
        """The sender's uplink rate and every receiver's downlink rate (0, None: unlimited)."""
        nics = self.nics
        if nics is None:
            return 0, None
        return nics.up_bps[src], nics.down_bps

    def _observe_sent(self, src: int, depart: int, msg: Any) -> None:
        seen = self.on_sent(src, msg)
        if seen is not None:
            self.observations.append(Observation(depart, src, seen))

    def _measure(self, msg: Any) -> tuple[PhaseStats, int]:
        """The phase counters and encoded size of a message."""
        size = len(msg.encode())
        stats = self.phases.get(msg.phase)
        if stats is None:
            stats = self.phases[msg.phase] = PhaseStats()
        return stats, size

    def _pop(self) -> Event:
        entry = heapq.heappop(self._queue)
        self.now_us = entry[0]
        return entry

    def run(self, until_us: int | None = None, stop: Callable[[], bool] | None = None) -> None:
        """Process events one at a time, in order, up to ``until_us`` (inclusive), or until
        ``stop()`` holds."""
        queue = self._queue
        while queue and (until_us is None or queue[0][0] <= until_us):
            entry = self._pop()
            if entry[1] == PRIO_RESEND:
                self._apply_one(entry, entry[0], None)
            else:  # a window of one instant: a copy not yet in comes back re-keyed
                self.apply([self.host.process([entry], entry[0] + 1)], ordered=True)
            if stop is not None and stop():
                break

    def window(self, width_us: int) -> list[Event]:
        """Every node event of the next conservative window ``[t, t + width_us)``, where ``t``
        is the earliest pending event (an idle stretch is skipped); [] when nothing is pending.
        The window's resends stay here, to be applied with its results."""
        queue, out, pop = self._queue, [], heapq.heappop
        while queue and not out:
            end = self.window_end = queue[0][0] + width_us
            while queue and queue[0][0] < end:
                entry = pop(queue)
                self.now_us = entry[0]
                if entry[1] == PRIO_RESEND:
                    self._resends.append(entry)
                else:
                    out.append(entry)
            if not out and self._resends:  # a window of resends only: apply them now
                self.apply([])
        return out

    def apply(self, batches: list[Processed], ordered: bool = False) -> None:
        """Take back what the hosts did with a window; their results (and the window's resends)
        are applied in event order (``ordered``: a single host's already are)."""
        results: list[Result] = []
        for batch in batches:
            self.delivered += batch.delivered
            self.signs += batch.signs
            self.verifies += batch.verifies
            results.extend(batch.results)
            for entry in batch.deferred:
                heapq.heappush(self._queue, entry)
        if self._resends:
            results.extend((entry, entry[0], None) for entry in self._resends)
            self._resends = []
            ordered = False
        if not ordered:
            results.sort(key=lambda r: r[0])
        for result in results:
            self._apply_one(*result)

    def run_windows(self, width_us: int) -> None:
        """Run to the end window by window, with the nodes of this process's host."""
        while batch := self.window(width_us):
            self.apply([self.host.process(batch, self.window_end)], ordered=True)

    def sorted_observations(self) -> list[Observation]:
        """Observations by (time, node), each node's in its own order: the same list however
        the nodes were spread over hosts."""
        return sorted(self.observations, key=lambda o: (o.time_us, o.node))

    @property
    def pending(self) -> int:
        return len(self._queue)
