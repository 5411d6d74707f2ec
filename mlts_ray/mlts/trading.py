"""One VPP's trading for one period, as a pure function a runtime can run anywhere.

Each trader acts by its own strategy (``mlts.traders``): it posts signed orders and signs the
contracts it is party to. The VMC, honest code that never asks what a node is, checks what they
do: it drops orders whose signature fails (counted against the order's node), matches the rest
by price-time priority, collects both parties' contract signatures (a party that returns none
walked away), refuses a resubmitted contract of another round or chain (a replay, counted
against its submitter), and forwards each open order to the cross-VPP book with probability
``workload.cross_vpp_share``. Every draw comes from streams named by node and round, so where
this runs never changes what it gives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mlts_ray.config import Config
from mlts_ray.ledger.crypto import Identity, KeyRing
from mlts_ray.ledger.tx import Order, SignedTrade, Trade
from mlts_ray.mlts.behaviours import strategies
from mlts_ray.mlts.traders import contract
from mlts_ray.mlts.workload import match
from mlts_ray.net.rng import stream


@dataclass(frozen=True, slots=True)
class TradingSpec:
    """What a VPP's trading needs from the simulation's state this round. ``strategies``: each
    node's own choice of how it trades (the VMC never reads it); ``recent``: the trades of the
    chain's latest block, which every node holds."""

    chain: str
    traders: tuple[str, ...]  # those allowed to trade, in the layout's order
    balances: Mapping[str, tuple[int, int]]
    strategies: Mapping[str, str]
    recent: tuple[SignedTrade, ...] = ()


@dataclass(slots=True)
class TradingResult:
    trades: list[SignedTrade]
    forwarded: list[Order]
    offences: dict[str, int] = field(default_factory=dict)  # badly signed orders, replays
    abandoned: dict[str, int] = field(default_factory=dict)


def trade_round(
    cfg: Config, spec: TradingSpec, rnd: int, identity_of: Callable[[str], Identity],
    keys: KeyRing,
) -> TradingResult:
    seed, chain = cfg.experiment.seed, spec.chain
    out = TradingResult([], [])
    strategy = {n: strategies(spec.strategies.get(n, "honest")).trader for n in spec.traders}
    orders = []
    for node in spec.traders:
        money, energy = spec.balances[node]
        for signed in strategy[node].orders(seed, cfg.workload, identity_of(node), chain, rnd,
                                            money, energy):
            if signed.order.node == node and signed.verify(keys):
                orders.append(signed)
            else:
                _bump(out.offences, node)
    fills, still_open = match(orders)
    for f in fills:
        trade = Trade(chain, rnd, f.buy.node, f.sell.node, chain, chain, f.wh, f.price,
                      f.buy.order_id, f.sell.order_id)
        signed, walked = contract(trade, (identity_of(trade.buyer), strategy[trade.buyer]),
                                  (identity_of(trade.seller), strategy[trade.seller]))
        if signed is None:
            _bump(out.abandoned, walked)
        else:
            out.trades.append(signed)
    for node in spec.traders:
        for again in strategy[node].resubmitted(identity_of(node), spec.recent):
            # a contract is valid in its own round and chain only: anything else is a replay
            if (again.trade.round, again.trade.chain) != (rnd, chain):
                _bump(out.offences, node)
            else:
                out.trades.append(again)
    rng = stream(seed, "forward", chain, rnd)
    share = cfg.workload.cross_vpp_share
    out.forwarded = [o for o in still_open if rng.random() < share]
    return out


def _bump(counts: dict[str, int], node: str) -> None:
    counts[node] = counts.get(node, 0) + 1
