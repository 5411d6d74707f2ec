"""The contract between a sans-I/O node and whatever drives it (etcd-raft's ``Ready`` idea).

A node is fed ``step(event, now_us)`` -- a delivered message or one of its own timers -- and
returns a :class:`Ready`: the messages it sends, the timers it sets, how many signatures it made
and checked (charged on the simulated CPU), and observations (commits, evidence) for the driver
to stamp with time and node. A node never reads a clock and never does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat
from typing import Any, Protocol


class Message(Protocol):
    """What the network needs of a protocol message."""

    @property
    def phase(self) -> str: ...

    def encode(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Timer:
    """A timer coming back to the node that set it; ``token`` is the node's own business."""

    token: Any


@dataclass(slots=True)
class Ready:
    """What one step produced. The lists start as a shared empty tuple and become lists on
    first use: most deliveries (a vote after its quorum) produce nothing to send."""

    sends: list[tuple[int, Any]] | tuple = ()  # (destination index, message)
    timers: list[tuple[int, Any]] | tuple = ()  # (delay in us, token)
    signs: int = 0
    verifies: int = 0
    hold_us: int = 0  # extra time before the sends leave (a slow or delaying node)
    outputs: list[Any] | tuple = ()

    def send(self, dst: int, msg: Any) -> None:
        if not self.sends:
            self.sends = []
        self.sends.append((dst, msg))

    def broadcast(self, dsts: list[int] | tuple[int, ...], msg: Any) -> None:
        if not self.sends:
            self.sends = []
        self.sends.extend(zip(dsts, repeat(msg)))  # in C: broadcasts are most copies

    def output(self, value: Any) -> None:
        if not self.outputs:
            self.outputs = []
        self.outputs.append(value)

    def timer(self, delay_us: int, token: Any) -> None:
        if not self.timers:
            self.timers = []
        self.timers.append((delay_us, token))


class Node(Protocol):
    def step(self, event: Any, now_us: int) -> Ready: ...
