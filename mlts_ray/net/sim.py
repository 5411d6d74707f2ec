"""Discrete-event driver of one chain: delivers messages and timers to sans-I/O nodes.

Event order is ``(time, priority, origin, seq)``: ``origin`` is the sending (or timer-setting)
node's index and ``seq`` that node's own counter. That is the SimPy rule with one counter per
node instead of one per simulator, so the order never depends on how nodes are spread over
processes -- the property the Ray runtime's conservative windows rely on.

Each node has a simulated CPU: an event that arrives while the node is busy waits, and the
node's signing and verification work (``Ready.signs``/``verifies``) is charged before anything it
sends leaves. Nodes handle their own votes internally and never address themselves.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlts_ray.net.network import LinkModel
from mlts_ray.net.node import Node, Ready, Timer
from mlts_ray.net.rng import stream

PRIO_INPUT, PRIO_DELIVERY, PRIO_TIMER = 0, 1, 2


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


@dataclass(slots=True)
class ChainSim:
    chain: str
    nodes: Sequence[Node]
    link: LinkModel
    seed: int
    sign_us: int
    verify_us: int
    epoch: int = 0  # e.g. the round: each gets fresh network randomness
    now_us: int = 0
    delivered: int = 0
    signs: int = 0
    verifies: int = 0
    phases: dict[str, PhaseStats] = field(default_factory=dict)
    observations: list[Observation] = field(default_factory=list)
    _queue: list[tuple] = field(default_factory=list)
    _busy: list[int] = field(default_factory=list)
    _seq: list[int] = field(default_factory=list)
    _rngs: dict[int, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._busy = [0] * len(self.nodes)
        self._seq = [0] * len(self.nodes)

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

    def _apply(self, src: int, ready: Ready, start_us: int) -> None:
        done = start_us + ready.signs * self.sign_us + ready.verifies * self.verify_us
        self.signs += ready.signs
        self.verifies += ready.verifies
        self._busy[src] = done
        for value in ready.outputs:
            self.observations.append(Observation(done, src, value))
        for delay, token in ready.timers:
            heapq.heappush(
                self._queue, (done + delay, PRIO_TIMER, src, self._next_seq(src), src, Timer(token))
            )
        if not ready.sends:
            return
        depart = done + ready.hold_us
        sizes: dict[int, int] = {}
        rng = self._rng(src)
        for dst, msg in ready.sends:
            size = sizes.get(id(msg))
            if size is None:
                size = sizes[id(msg)] = len(msg.encode())
            stats = self.phases.get(msg.phase)
            if stats is None:
                stats = self.phases[msg.phase] = PhaseStats()
            stats.count += 1
            stats.bytes += size
            arrive = depart + self.link.delay_us(rng, size)
            if self.link.dropped(rng, depart, src, dst):
                stats.dropped += 1
                continue
            heapq.heappush(
                self._queue, (arrive, PRIO_DELIVERY, src, self._next_seq(src), dst, msg)
            )

    def run(self, until_us: int | None = None, stop: Callable[[], bool] | None = None) -> None:
        """Process events in order up to ``until_us`` (inclusive), or until ``stop()`` holds."""
        queue, nodes, busy = self._queue, self.nodes, self._busy
        while queue and (until_us is None or queue[0][0] <= until_us):
            t, prio, _origin, _seq, dst, event = heapq.heappop(queue)
            start = t if t > busy[dst] else busy[dst]
            self.now_us = t
            if prio == PRIO_DELIVERY:
                self.delivered += 1
            ready = nodes[dst].step(event, start)
            if ready is not None:
                self._apply(dst, ready, start)
            if stop is not None and stop():
                break

    @property
    def pending(self) -> int:
        return len(self._queue)
