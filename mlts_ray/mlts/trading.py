"""One VPP's trading for one period, as a pure function a runtime can run anywhere.

Each trader acts by its own strategy (``mlts.traders``): it posts signed orders and signs the
contracts it is party to. The VMC, honest code that never asks what a node is, checks what they
do: it drops orders whose signature fails, matches the rest in the VPP's market
(``workload.market``: continuous or call auction), collects both
parties' contract signatures (a party that returns none walked away), refuses a resubmitted
contract of another round or chain (a replay) -- filing a signed complaint against the node
for each (``consensus.complaints``) -- and forwards each open order to the cross-VPP book with probability
``workload.cross_vpp_share``. Every draw comes from streams named by node and round, so where
this runs never changes what it gives. It runs in two steps (``book``, then ``sign_fills``): the
forwarded orders are known before any contract is signed, so the cross-VPP book need not wait
for a VPP's contracts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mlts_ray.config import Workload
from mlts_ray.consensus.complaints import Complaint, file
from mlts_ray.ledger.crypto import Identity, KeyRing
from mlts_ray.ledger.tx import Order, SignedTrade, Trade
from mlts_ray.mlts.traders import Trader, contract
from mlts_ray.mlts.workload import MARKETS, Fill
from mlts_ray.net.rng import stream


@dataclass(frozen=True, slots=True)
class TradingSpec:
    """What a VPP's trading needs from the simulation's state this round. ``strategies``: each
    node's own choice of how it trades (the VMC never reads it); ``recent``: the trades of the
    chain's latest block, which every node holds."""

    chain: str
    traders: tuple[str, ...]  # those allowed to trade and online, in the layout's order
    balances: Mapping[str, tuple[int, int]]  # money, and the period's metered surplus
    deficits: Mapping[str, int]  # the period's metered deficit, Wh
    strategies: Mapping[str, Trader]  # every trader's
    recent: tuple[SignedTrade, ...] = ()
    vmc: str = ""  # who runs the book, and files the complaints (consensus.complaints)


@dataclass(slots=True)
class TradingResult:
    trades: list[SignedTrade]
    forwarded: list[Order]
    complaints: list[Complaint] = field(default_factory=list)  # the VMC's, signed

    @property
    def offences(self) -> dict[str, int]:
        """Complaints of badly signed orders and replays, per accused."""
        return _count(c.accused for c in self.complaints if c.reason != "abandoned")

    @property
    def abandoned(self) -> dict[str, int]:
        return _count(c.accused for c in self.complaints if c.reason == "abandoned")


@dataclass(slots=True)
class Booked:
    """A VPP's book once its orders are in and matched: the fills still to be signed as
    contracts, the orders it forwards to the cross-VPP book (known from here on: the cross-VPP
    book need not wait for the contracts) and the VMC's complaints so far."""

    spec: TradingSpec
    round: int
    fills: list[Fill]
    forwarded: list[Order]
    complaints: list[Complaint]


def trade_round(
    w: Workload, seed: int, spec: TradingSpec, rnd: int,
    identity_of: Callable[[str], Identity], keys: KeyRing,
) -> TradingResult:
    """The period's trading: ``book`` then ``sign_fills``."""
    return sign_fills(book(w, seed, spec, rnd, identity_of, keys), identity_of)


def book(
    w: Workload, seed: int, spec: TradingSpec, rnd: int,
    identity_of: Callable[[str], Identity], keys: KeyRing,
) -> Booked:
    """The traders post their orders, the VMC drops the badly signed ones (a complaint each),
    matches the rest and draws which open orders go on to the cross-VPP book."""
    chain = spec.chain
    complaints: list[Complaint] = []
    strategy = spec.strategies
    orders = []
    for node in spec.traders:
        money, surplus = spec.balances[node]
        for signed in strategy[node].orders(seed, w, identity_of(node), chain, rnd,
                                            money, surplus, spec.deficits.get(node, 0)):
            if signed.order.node == node and signed.verify(keys):
                orders.append(signed)
            else:
                _complain(complaints, spec, rnd, identity_of, node, "bad-signature",
                          signed.encode())
    fills, still_open = MARKETS[w.market](orders)
    rng = stream(seed, "forward", chain, rnd)
    share = w.cross_vpp_share
    return Booked(spec, rnd, fills, [o for o in still_open if rng.random() < share], complaints)


def sign_fills(booked: Booked, identity_of: Callable[[str], Identity]) -> TradingResult:
    """The fills' contracts as both parties sign them (one that walks away: a complaint), then
    each trader's resubmissions (another round's or chain's: a replay, a complaint): the
    period's trades, in that order, with every complaint after the book's."""
    spec, rnd, chain = booked.spec, booked.round, booked.spec.chain
    out = TradingResult([], booked.forwarded, list(booked.complaints))
    strategy = spec.strategies
    for f in booked.fills:
        trade = Trade(chain, rnd, f.buy.node, f.sell.node, chain, chain, f.wh, f.price,
                      f.buy.order_id, f.sell.order_id)
        signed, walked = contract(trade, (identity_of(trade.buyer), strategy[trade.buyer]),
                                  (identity_of(trade.seller), strategy[trade.seller]))
        if signed is None:
            _complain(out.complaints, spec, rnd, identity_of, walked, "abandoned",
                      trade.encode())
        else:
            out.trades.append(signed)
    for node in spec.traders:
        for again in strategy[node].resubmitted(identity_of(node), spec.recent):
            # a contract is valid in its own round and chain only: anything else is a replay
            if (again.trade.round, again.trade.chain) != (rnd, chain):
                _complain(out.complaints, spec, rnd, identity_of, node, "replay",
                          again.encode())
            else:
                out.trades.append(again)
    return out


def _complain(into: list[Complaint], spec: TradingSpec, rnd: int,
              identity_of: Callable[[str], Identity], accused: str, reason: str,
              exhibit: bytes) -> None:
    """The VMC files a signed complaint (none where the VPP has no VMC to file it)."""
    if spec.vmc:
        into.append(file(identity_of(spec.vmc), spec.chain, rnd, accused, reason, exhibit))


def _count(names) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in names:
        out[n] = out.get(n, 0) + 1
    return out
