"""One VPP's trading for one period, as a pure function a runtime can run anywhere.

Given the traders allowed to trade, their balances and behaviours: each posts signed orders
(a ``forge`` trader signs badly, and the VMC drops those orders), the VMC matches them by
price-time priority, both parties sign each contract (an ``abandon`` party walks away, a
``forge`` party signs badly), and the VMC forwards each open order to the cross-VPP book with
probability ``workload.cross_vpp_share``. Every draw comes from streams named by node and round,
so where this runs never changes what it gives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mlts_ray.config import Config
from mlts_ray.consensus.byzantine import forged
from mlts_ray.ledger.crypto import SIGNATURE_SIZE, Identity, KeyRing
from mlts_ray.ledger.tx import Order, SignedTrade, Trade
from mlts_ray.mlts.workload import make_orders, match
from mlts_ray.net.rng import stream

NO_SIG = bytes(SIGNATURE_SIZE)


@dataclass(frozen=True, slots=True)
class TradingSpec:
    """What a VPP's trading needs from the simulation's state this round."""

    chain: str
    traders: tuple[str, ...]  # those allowed to trade, in the layout's order
    balances: Mapping[str, tuple[int, int]]
    behaviour: Mapping[str, str]


@dataclass(slots=True)
class TradingResult:
    trades: list[SignedTrade]
    forwarded: list[Order]
    offences: dict[str, int] = field(default_factory=dict)  # badly signed orders
    abandoned: dict[str, int] = field(default_factory=dict)


def sign_contract(
    trade: Trade, identity_of: Callable[[str], Identity], behaviour_of: Callable[[str], str],
    on_abandon: Callable[[str], None],
) -> SignedTrade | None:
    """The contract as its parties sign it, each per its own behaviour."""
    for party in (trade.buyer, trade.seller):
        if behaviour_of(party) == "abandon":
            on_abandon(party)
            return None
    st = trade.sign(identity_of(trade.buyer), identity_of(trade.seller))
    return SignedTrade(
        trade,
        NO_SIG if behaviour_of(trade.buyer) == "forge" else st.buyer_sig,
        NO_SIG if behaviour_of(trade.seller) == "forge" else st.seller_sig,
    )


def trade_round(
    cfg: Config, spec: TradingSpec, rnd: int, identity_of: Callable[[str], Identity],
    keys: KeyRing,
) -> TradingResult:
    seed, chain = cfg.experiment.seed, spec.chain
    out = TradingResult([], [])
    orders = []
    for node in spec.traders:
        money, energy = spec.balances[node]
        for o in make_orders(seed, cfg.workload, node, chain, rnd, money, energy):
            signed = o.sign(identity_of(node))
            if spec.behaviour[node] == "forge":
                signed = forged(signed)
            if signed.verify(keys):
                orders.append(signed)
            else:
                out.offences[node] = out.offences.get(node, 0) + 1
    fills, still_open = match(orders)

    def abandon(party: str) -> None:
        out.abandoned[party] = out.abandoned.get(party, 0) + 1

    for f in fills:
        trade = Trade(chain, rnd, f.buy.node, f.sell.node, chain, chain, f.wh, f.price,
                      f.buy.order_id, f.sell.order_id)
        signed = sign_contract(trade, identity_of, spec.behaviour.__getitem__, abandon)
        if signed is not None:
            out.trades.append(signed)
    rng = stream(seed, "forward", chain, rnd)
    share = cfg.workload.cross_vpp_share
    out.forwarded = [o for o in still_open if rng.random() < share]
    return out
