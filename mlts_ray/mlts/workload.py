"""Orders from metered positions, and the two market mechanisms that match them.

Each period a trader's meter (``mlts.energy``) gives its net position: a surplus it offers, a
deficit it bids for, split into ``workload.orders_per_node`` limit orders at prices its bidding
strategy draws inside the tariff band [feed-in, retail] -- no seller takes less than the grid
pays, no buyer pays more than the grid charges. A buyer never bids more money than it holds.

Markets (``workload.market``), inside a VPP and on the cross-VPP book alike:

- ``cda``, a continuous double auction with price-time priority, pay-as-bid: an incoming
  order trades against the best resting order of the other side while prices cross, at the
  resting order's price;
- ``call``, a periodic uniform-price double auction, pay-as-clear: the period's bids (highest
  first) and asks (lowest first) are crossed while the bid is at least the ask, and every fill
  pays one price, the midpoint of the last crossing bid and ask.

Where what is left of a position goes -- the grid -- is settlement's (``ledger.settlement``).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mlts_ray.config import Workload
from mlts_ray.ledger.tx import Order, Side, SignedOrder
from mlts_ray.net.rng import stream


def period_us(w: Workload) -> int:
    """One trading period: orders arrive within it."""
    return w.period_minutes * 60 * 1_000_000


def make_orders(seed: int, w: Workload, node: str, vpp: str, round_: int, money: int,
                surplus: int, deficit: int) -> list[Order]:
    """The node's orders for one period (unsigned): its surplus offered, or its deficit bid
    for within the money it holds, in ``orders_per_node`` pieces of at least ``order_wh_min``."""
    side, total = (Side.SELL, surplus) if surplus > 0 else (Side.BUY, deficit)
    pieces = min(w.orders_per_node, total // w.order_wh_min)
    if pieces <= 0:
        return []
    rng = stream(seed, "orders", node, round_)
    out: list[Order] = []
    for seq in range(pieces):
        wh = total // pieces + (1 if seq < total % pieces else 0)
        price = (rng.randint(w.feed_in_cents, w.retail_cents) if w.bidding == "random"
                 else (w.feed_in_cents + w.retail_cents) // 2)
        time_us = rng.randrange(period_us(w))
        if side == Side.BUY:
            wh = min(wh, max(0, money) * 1000 // price if price else wh)
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


Matched = tuple[list[Fill], list[Order]]


def _plain(orders: Sequence[SignedOrder] | Sequence[Order]) -> list[Order]:
    return [o.order if isinstance(o, SignedOrder) else o for o in orders]


def _left_open(plain: list[Order], left: list[int], wanted: bool) -> list[Order]:
    # each a new, checked Order: 10 ms for the 4,300 the cross-VPP book leaves open a round
    # at 100 VPPs, which nobody there reads (``wanted`` False)
    if not wanted:
        return []
    return [Order(o.node, o.vpp, o.round, o.seq, o.side, left[i], o.price, o.time_us)
            for i, o in enumerate(plain) if left[i]]


def match(orders: Sequence[SignedOrder] | Sequence[Order], left_open: bool = True) -> Matched:
    """The continuous double auction: price-time priority, pay-as-bid. Returns the fills and
    the orders left (partly) open, with their remaining quantity (none, unless
    ``left_open``)."""
    plain = _plain(orders)
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
    return fills, _left_open(plain, left, left_open)


def match_call(orders: Sequence[SignedOrder] | Sequence[Order],
               left_open: bool = True) -> Matched:
    """The call auction: one uniform price for the whole period, pay-as-clear. Bids by price
    (highest first), asks by price (lowest first), each then by time and id, are crossed while
    the bid is at least the ask; the price is the midpoint of the last crossing pair (rounded
    down), which every crossed bid is at or above and every crossed ask at or below. The
    orders left open as in ``match``."""
    plain = _plain(orders)
    key = lambda i: (plain[i].time_us, plain[i].order_id)  # noqa: E731
    bids = sorted((i for i, o in enumerate(plain) if o.side == Side.BUY),
                  key=lambda i: (-plain[i].price, *key(i)))
    asks = sorted((i for i, o in enumerate(plain) if o.side == Side.SELL),
                  key=lambda i: (plain[i].price, *key(i)))
    left = [o.wh for o in plain]
    pairs: list[tuple[int, int, int]] = []
    b = a = 0
    while b < len(bids) and a < len(asks) and plain[bids[b]].price >= plain[asks[a]].price:
        i, j = bids[b], asks[a]
        qty = min(left[i], left[j])
        pairs.append((i, j, qty))
        left[i] -= qty
        left[j] -= qty
        b += not left[i]
        a += not left[j]
    if not pairs:
        return [], _left_open(plain, left, left_open)
    last_bid, last_ask = plain[pairs[-1][0]].price, plain[pairs[-1][1]].price
    price = (last_bid + last_ask) // 2
    return ([Fill(plain[i], plain[j], qty, price) for i, j, qty in pairs],
            _left_open(plain, left, left_open))


MARKETS: dict[str, Callable[..., Matched]] = {"cda": match, "call": match_call}
