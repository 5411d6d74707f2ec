"""Traders as strategies (docs/architecture.md section 5): what a node does with its own orders and contracts.

The honest VMC never asks what a node *is*; it sees what a node *does* -- the orders it signs,
the contract signatures it returns, the contracts it submits -- and checks them. Each behaviour
that trades differently is a strategy here, chosen by the node for itself:

- ``honest``: offers its metered surplus or bids for its deficit, within the money it holds,
  signed; signs the contracts it is party to.
- ``forge``: signs its orders and contracts badly.
- ``abandon``: posts orders, then goes offline with them open -- it walks away from the
  contracts they fill (the one node churn lets leave with an open order).
- ``double-spend``: offers energy it does not have and bids money it does not hold (three
  times its position and its money), which settlement refuses as an overdraft.
- ``replay``: also resubmits a contract of the chain's latest block that it was party to.
- ``mute`` (``crash``, ``silent``): sends nothing, orders included.

Consensus-only behaviours (``equivocate``, ``delay``) and ``false-audit`` trade honestly; the
one registry of every behaviour's strategy per role is ``mlts_ray.population.registry``.
"""

from __future__ import annotations

from collections.abc import Sequence

from mlts_ray.config import Workload
from mlts_ray.consensus.byzantine import forged
from mlts_ray.ledger.crypto import SIGNATURE_SIZE, Identity
from mlts_ray.ledger.tx import SignedOrder, SignedTrade, Trade
from mlts_ray.mlts.workload import make_orders

NO_SIG = bytes(SIGNATURE_SIZE)


class Trader:
    """The honest strategy; the others override what they do differently."""

    budget = 1  # how many times its position and money it offers

    def orders(self, seed: int, w: Workload, me: Identity, vpp: str, rnd: int, money: int,
               surplus: int, deficit: int) -> list[SignedOrder]:
        b = self.budget
        made = make_orders(seed, w, me.name, vpp, rnd, money * b, surplus * b, deficit * b)
        return [o.sign(me) for o in made]

    def contract_signature(self, trade: Trade, me: Identity) -> bytes | None:
        """Its signature of a contract it is party to; None: it walks away."""
        return me.sign(trade.root)

    def resubmitted(self, me: Identity, recent: Sequence[SignedTrade]) -> list[SignedTrade]:
        """Contracts it submits beyond its own fills (none, honestly)."""
        return []


class Forge(Trader):
    def orders(self, seed, w, me, vpp, rnd, money, surplus, deficit):
        return [forged(o) for o in super().orders(seed, w, me, vpp, rnd, money, surplus, deficit)]

    def contract_signature(self, trade, me):
        return NO_SIG


class Abandon(Trader):
    def contract_signature(self, trade, me):
        return None


class DoubleSpend(Trader):
    budget = 3


class Replay(Trader):
    def resubmitted(self, me, recent):
        mine = [t for t in recent if me.name in (t.trade.buyer, t.trade.seller)]
        return mine[:1]


class Mute(Trader):
    def orders(self, seed, w, me, vpp, rnd, money, surplus, deficit):
        return []

    def contract_signature(self, trade, me):
        return None


def contract(trade: Trade, buyer: tuple[Identity, Trader], seller: tuple[Identity, Trader]
             ) -> tuple[SignedTrade | None, str | None]:
    """The contract as its parties sign it: (signed trade, None), or (None, the party that
    returned no signature)."""
    sigs = []
    for identity, strategy in (buyer, seller):
        sig = strategy.contract_signature(trade, identity)
        if sig is None:
            return None, identity.name
        sigs.append(sig)
    return SignedTrade(trade, *sigs), None
