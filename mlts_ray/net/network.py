"""Link and NIC model of one chain's network (docs/architecture.md section 6).

A copy of ``b`` bytes leaves its sender's uplink after every copy sent before it (``8b / up``
each, in send order), travels ``max(min_latency, base + N(0, jitter))``, and is delivered once its
last bit is in and the receiver's downlink has carried it after everything it carried before
(``8b / down``; the two links pipeline, as a TCP stream does, so an idle fast downlink adds
nothing). A copy is lost with probability ``loss`` or when an active partition separates sender
and receiver; with ``reliable`` transport the sender resends it after an RTO that doubles per
try (capped at 60 s, RFC 6298's ceiling), through its uplink again, until it gets through.
Every draw comes from the sender's own stream, in the order the sender sends, so the outcome
does not depend on which process (or Ray actor) runs which node.
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


MAX_RTO_US = 60_000_000


def tx_us(size: int, bps: int) -> int:
    """Time for ``size`` bytes to pass a link of ``bps`` bit/s: ceil, whole microseconds."""
    return -(-size * 8_000_000 // bps)


@dataclass(frozen=True, slots=True)
class Nics:
    """Every node's uplink and downlink of one chain, in bit/s, by node index."""

    up_bps: tuple[int, ...]
    down_bps: tuple[int, ...]

    @classmethod
    def uniform(cls, n: int, up_bps: float, down_bps: float | None = None) -> Nics:
        return cls((int(up_bps),) * n, (int(down_bps or up_bps),) * n)

    @classmethod
    def for_names(cls, net, names: Sequence[str]) -> Nics:  # net: mlts_ray.config.Network
        rates = [nic_mbps(net, name) for name in names]
        return cls(tuple(int(up * 1e6) for up, _ in rates),
                   tuple(int(down * 1e6) for _, down in rates))


def best_connected(net, names: Sequence[str]) -> str:
    """The first of ``names`` with the fastest uplink (net: mlts_ray.config.Network): a side
    chain's VMC in its data centre; on the main chain, where every node is, the first."""
    return max(names, key=lambda n: nic_mbps(net, n)[0])  # max keeps the first of equals


def nic_mbps(net, name: str) -> tuple[float, float]:
    """(uplink, downlink) of a node by its role: ``vpp-v/vmc`` and ``grid-i`` have their own."""
    if name.endswith("/vmc"):
        return net.vmc_uplink_mbps, net.vmc_downlink_mbps
    if name.startswith("grid-"):
        return net.grid_uplink_mbps, net.grid_downlink_mbps
    return net.uplink_mbps, net.downlink_mbps


@dataclass(frozen=True, slots=True)
class LinkModel:
    base_us: float
    jitter_us: float
    min_us: int
    loss: float = 0.0
    partitions: tuple[PartitionWindow, ...] = ()
    reliable: bool = False  # resend what is lost (config default: reliable)
    rto_us: int = 200_000

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
            base * US_PER_MS, jitter * US_PER_MS, ms_to_us(floor), net.loss, tuple(partitions),
            net.transport == "reliable", ms_to_us(net.rto_ms),
        )

    def latency_us(self, rng: random.Random) -> int:
        return max(self.min_us, round(self.base_us + rng.gauss(0.0, self.jitter_us)))

    def resend_after_us(self, tries: int) -> int:
        """When the ``tries``-th resend leaves after the previous try: the RTO doubled per try,
        capped, and never inside the lookahead (so conservative windows stay exact)."""
        return max(self.min_us, min(MAX_RTO_US, self.rto_us << min(tries - 1, 30)))

    @property
    def lossless(self) -> bool:
        return not self.loss and not self.partitions

    def dropped(self, rng: random.Random, t_us: int, src: int, dst: int) -> bool:
        if not self.loss and not self.partitions:
            return False
        if self.loss and rng.random() < self.loss:
            return True
        return any(p.separates(t_us, src, dst) for p in self.partitions)
