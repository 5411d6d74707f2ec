"""Link model of one chain's network (DESIGN section 6).

One-way delay of a message of ``b`` bytes sent at ``t``:
``max(min_latency, base + N(0, jitter)) + 8 * b / bandwidth``. A message is lost with probability
``loss`` or when an active partition separates sender and receiver. Every draw comes from the
sender's own stream, in the order the sender sends, so the outcome does not depend on which
process (or Ray actor) runs which node.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

US_PER_MS = 1000


def ms_to_us(ms: float) -> int:
    return round(ms * US_PER_MS)


@dataclass(frozen=True, slots=True)
class PartitionWindow:
    """Between ``start_us`` and ``end_us`` only nodes of one group talk to each other; nodes in
    no listed group form one more group together."""

    start_us: int
    end_us: int
    group_of: dict[int, int]  # node index -> group number; unlisted nodes are group -1

    def separates(self, t_us: int, src: int, dst: int) -> bool:
        return (
            self.start_us <= t_us < self.end_us
            and self.group_of.get(src, -1) != self.group_of.get(dst, -1)
        )


@dataclass(frozen=True, slots=True)
class LinkModel:
    base_us: float
    jitter_us: float
    min_us: int
    bandwidth_bps: float
    loss: float = 0.0
    partitions: tuple[PartitionWindow, ...] = ()

    @classmethod
    def from_config(
        cls,
        net,  # mlts_ray.config.Network
        inter: bool,
        partitions: Sequence[PartitionWindow] = (),
    ) -> LinkModel:
        base, jitter, floor = (
            (net.inter_latency_ms, net.inter_jitter_ms, net.inter_min_latency_ms)
            if inter
            else (net.intra_latency_ms, net.intra_jitter_ms, net.intra_min_latency_ms)
        )
        return cls(
            base * US_PER_MS, jitter * US_PER_MS, ms_to_us(floor),
            net.bandwidth_mbps * 1e6, net.loss, tuple(partitions),
        )

    def transmission_us(self, size: int) -> int:
        return -(-size * 8_000_000 // int(self.bandwidth_bps))  # ceil, integer us

    def delay_us(self, rng: random.Random, size: int) -> int:
        latency = max(self.min_us, round(self.base_us + rng.gauss(0.0, self.jitter_us)))
        return latency + self.transmission_us(size)

    @property
    def lossless(self) -> bool:
        return not self.loss and not self.partitions  # ceil, integer us

    def dropped(self, rng: random.Random, t_us: int, src: int, dst: int) -> bool:
        if not self.loss and not self.partitions:
            return False
        if self.loss and rng.random() < self.loss:
            return True
        return any(p.separates(t_us, src, dst) for p in self.partitions)
