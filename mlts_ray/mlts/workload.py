"""Seeded trading workload: resource profiles, signed orders and price-time matching.

Every resource has a seeded profile (a photovoltaic seller, a load that buys, or storage that
does either); each period it decides its side from its profile and posts
``workload.orders_per_node`` limit orders, never offering more energy or bidding more money
than it holds. Orders are matched inside the VPP by a continuous double auction with
price-time priority: an incoming order trades against the best resting order of the other
side while prices cross, at the resting order's price.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

from mlts_ray.config import Workload
from mlts_ray.ledger.tx import Order, Side, SignedOrder
from mlts_ray.net.rng import stream

PERIOD_US = 15 * 60 * 1_000_000  # one trading period: orders arrive within 15 minutes
PROFILES = ("pv", "load", "storage")


def profile_of(seed: int, node: str) -> str:
    return stream(seed, "profile", node).choice(PROFILES)


def make_orders(
    seed: int, w: Workload, node: str, vpp: str, round_: int, money: int, energy: int
) -> list[Order]:
    """The node's orders for one period (unsigned), within what it holds."""
    rng = stream(seed, "orders", node, round_)
    profile = profile_of(seed, node)
    sell_p = {"pv": 0.85, "load": 0.15, "storage": 0.5}[profile]
    side = Side.SELL if rng.random() < sell_p else Side.BUY
    out: list[Order] = []
    for seq in range(w.orders_per_node):
        wh = rng.randint(w.order_wh_min, w.order_wh_max)
        price = rng.randint(w.price_low_cents, w.price_high_cents)
        time_us = rng.randrange(PERIOD_US)
        if side == Side.SELL:
            wh = min(wh, energy)
            energy -= wh
        else:
            affordable = money * 1000 // price if price else wh
            wh = min(wh, affordable)
            money -= (wh * price + 999) // 1000
        if wh < w.order_wh_min:
            break
        out.append(Order(node, vpp, round_, seq, side, wh, price, time_us))
    return out


@dataclass(frozen=True, slots=True)
class Fill:
    buy: Order
    sell: Order
    wh: int
    price: int


def match(orders: Sequence[SignedOrder] | Sequence[Order]) -> tuple[list[Fill], list[Order]]:
    """Price-time priority matching. Returns the fills and the orders left (partly) open, with
    their remaining quantity."""
    plain = [o.order if isinstance(o, SignedOrder) else o for o in orders]
    bids: list[tuple[int, int, str, int]] = []  # (-price, time, id, index)
    asks: list[tuple[int, int, str, int]] = []  # (price, time, id, index)
    left = [o.wh for o in plain]
    fills: list[Fill] = []
    for i in sorted(range(len(plain)), key=lambda j: (plain[j].time_us, plain[j].order_id)):
        o = plain[i]
        buying = o.side == Side.BUY
        book = asks if buying else bids
        # the best resting price crosses: an ask at or below a bid, a bid at or above an ask
        while left[i] and book and (book[0][0] <= o.price if buying else -book[0][0] >= o.price):
            j = book[0][3]
            qty = min(left[i], left[j])
            rest = plain[j]
            buy, sell = (o, rest) if o.side == Side.BUY else (rest, o)
            fills.append(Fill(buy, sell, qty, rest.price))
            left[i] -= qty
            left[j] -= qty
            if not left[j]:
                heapq.heappop(book)
        if left[i]:
            key = -o.price if o.side == Side.BUY else o.price
            heapq.heappush(bids if o.side == Side.BUY else asks, (key, o.time_us, o.order_id, i))
    open_orders = [
        Order(o.node, o.vpp, o.round, o.seq, o.side, left[i], o.price, o.time_us)
        for i, o in enumerate(plain) if left[i]
    ]
    return fills, open_orders
