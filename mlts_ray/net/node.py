"""The contract between a sans-I/O node and whatever drives it (etcd-raft's ``Ready`` idea).

A node is fed ``step(event, now_us)`` -- a delivered message or one of its own timers -- and
returns a :class:`Ready`: the messages it sends, the timers it sets, how many signatures it made
and checked (charged on the simulated CPU), and observations (commits, evidence) for the driver
to stamp with time and node. A node never reads a clock and never does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    sends: list[tuple[int, Any]] = field(default_factory=list)  # (destination index, message)
    timers: list[tuple[int, Any]] = field(default_factory=list)  # (delay in us, token)
    signs: int = 0
    verifies: int = 0
    hold_us: int = 0  # extra time before the sends leave (a slow or delaying node)
    outputs: list[Any] = field(default_factory=list)

    def send(self, dst: int, msg: Any) -> None:
        self.sends.append((dst, msg))

    def broadcast(self, dsts: list[int] | tuple[int, ...], msg: Any) -> None:
        self.sends.extend((d, msg) for d in dsts)



class Node(Protocol):
    def step(self, event: Any, now_us: int) -> Ready: ...
