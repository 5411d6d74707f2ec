"""The settlement contract: money and energy balances moved by committed trades.

A trade moves ``amount_cents`` from buyer to seller and ``wh`` from seller to buyer, or nothing at
all. It is refused (``SettlementError`` naming the trade and a stable reason code) for a bad
signature, a replay (its id settled before), an unknown party, or an overdraft of money or
energy. Trades never take a balance below zero and never change the totals: what one side loses
the other gains.

Energy is metered per period (docs/architecture.md section 4): a node's surplus enters its
account at the period's start (:meth:`Settlement.mint`); at its end (:meth:`Settlement.close`)
the node consumes its deficit, and the grid -- the market maker, account ``GRID`` -- buys what
is left at the feed-in tariff and supplies what is missing at the retail price. So every energy
account is empty between periods, and money is conserved with the grid's account included. The
grid's account, and a node's through a grid bill, may go below zero: the grid extends credit,
as a utility does, and the bill is owed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from mlts_ray.errors import LedgerError, SettlementError
from mlts_ray.ledger.crypto import KeyRing
from mlts_ray.ledger.tx import SignedTrade


class Reject(StrEnum):
    BAD_SIGNATURE = "bad-signature"
    REPLAY = "replay"
    UNKNOWN_PARTY = "unknown-party"
    OVERDRAFT_MONEY = "overdraft-money"
    OVERDRAFT_ENERGY = "overdraft-energy"


Balance = tuple[int, int]  # (money_cents, energy_wh)
GRID = "grid"  # the grid's account: the market maker at the feed-in and retail tariffs


def cents(wh: int, price: int) -> int:
    """What ``wh`` cost at ``price`` cents per kWh, rounded half up (as a trade's amount)."""
    return (wh * price + 500) // 1000


def overdrawn_by(reason: str, buyer: str, seller: str) -> str | None:
    """The party whose balance a trade rejected for ``reason`` overdrew -- its own fault, unlike
    a replay, which got past consensus -- or None."""
    return {Reject.OVERDRAFT_MONEY: buyer, Reject.OVERDRAFT_ENERGY: seller}.get(reason)


def sum_balances(balances: Iterable[Balance]) -> Balance:
    """The money and the energy of ``balances``, each summed."""
    balances = list(balances)
    return sum(m for m, _ in balances), sum(e for _, e in balances)


class Settlement:
    """Balances of every account plus the ids of the settled trades a replay could still reach.

    The replay guard is bounded: a contract is valid in its own round only (a block carrying a
    trade of another round is invalid, ``consensus.checks``), so once round ``r`` starts no
    trade of an earlier round can settle. :meth:`forget_before` drops those rounds' ids and
    refuses, as replays, trades from before the horizon -- memory stays flat over a long run
    instead of growing by every trade ever settled."""

    __slots__ = ("keys", "_balances", "_settled", "_horizon")

    def __init__(self, keys: KeyRing, balances: Mapping[str, Balance] | None = None) -> None:
        self.keys = keys
        self._balances: dict[str, Balance] = {}
        self._settled: dict[int, set[str]] = {}  # trade round -> ids settled in it
        self._horizon = 0  # trades of earlier rounds are refused
        for node, (money, energy) in (balances or {}).items():
            self.open_account(node, money, energy)

    def open_account(self, node: str, money_cents: int, energy_wh: int) -> None:
        if node in self._balances:
            raise LedgerError(f"account {node}", "already open")
        for name, value in (("money_cents", money_cents), ("energy_wh", energy_wh)):
            if not isinstance(value, int) or value < 0:
                raise LedgerError(f"account {node}", f"{name} must be an integer >= 0, got {value!r}")
        self._balances[node] = (money_cents, energy_wh)

    def balance(self, node: str) -> Balance:
        try:
            return self._balances[node]
        except KeyError:
            raise LedgerError(f"account {node}", "no such account") from None

    def balances(self) -> dict[str, Balance]:
        return dict(self._balances)

    def totals(self) -> Balance:
        return sum_balances(self._balances.values())

    def mint(self, node: str, wh: int) -> None:
        """A metered surplus of ``wh`` enters the node's account for the period."""
        money, energy = self.balance(node)
        if wh < 0:
            raise LedgerError(f"account {node}", f"cannot mint {wh} Wh")
        self._balances[node] = (money, energy + wh)

    def close(self, node: str, deficit_wh: int, feed_in: int, retail: int) -> tuple[int, int]:
        """The period's end for ``node``: it consumes ``deficit_wh``; the grid buys what its
        account holds beyond that at ``feed_in`` and supplies what it lacks at ``retail``.
        Returns (imported, exported) Wh; the account is empty after."""
        money, energy = self.balance(node)
        grid_money, _ = self.balance(GRID)
        imported, exported = max(0, deficit_wh - energy), max(0, energy - deficit_wh)
        paid = cents(imported, retail) - cents(exported, feed_in)
        self._balances[node] = (money - paid, 0)
        self._balances[GRID] = (grid_money + paid, 0)
        return imported, exported

    # --- what a shard reports and applies in a cross-chain step (ledger.chain_accounts) -------

    def holds(self, node: str) -> bool:
        return node in self._balances

    @property
    def horizon(self) -> int:
        return self._horizon

    def settled_among(self, ids: Iterable[tuple[int, str]]) -> dict[int, frozenset[str]]:
        """Which of the ``(round, id)`` pairs the replay guard holds, by round."""
        out: dict[int, set[str]] = {}
        for rnd, tx_id in ids:
            if tx_id in self._settled.get(rnd, ()):
                out.setdefault(rnd, set()).add(tx_id)
        return {r: frozenset(ids) for r, ids in out.items()}

    @classmethod
    def scratch(cls, keys: KeyRing, balances: Mapping[str, Balance],
                settled: Mapping[int, Iterable[str]], horizon: int) -> Settlement:
        """A ledger rebuilt from shards' reports, to decide a step on (no checks of the
        balances: they are a real ledger's, grid bills below zero included)."""
        out = cls(keys)
        out._balances = dict(balances)
        out._settled = {r: set(ids) for r, ids in settled.items()}
        out._horizon = horizon
        return out

    def settled_ids(self) -> list[tuple[int, str]]:
        return [(r, tx) for r, ids in self._settled.items() for tx in ids]

    def apply(self, balances: Mapping[str, Balance], ids: Iterable[tuple[int, str]]) -> None:
        """Write a decided step's balances and settled ids (the caller checked them)."""
        self._commit(dict(balances), list(ids))

    def is_settled(self, tx_id: str) -> bool:
        """Settled in a round the guard still remembers."""
        return any(tx_id in ids for ids in self._settled.values())

    @property
    def settled_count(self) -> int:
        """Ids the replay guard holds (the rounds from the horizon on)."""
        return sum(len(ids) for ids in self._settled.values())

    def forget_before(self, round_: int) -> None:
        """Round ``round_`` begins: trades of earlier rounds can no longer settle, so their
        ids are dropped and any such trade is refused from now on."""
        self._horizon = max(self._horizon, round_)
        for r in [r for r in self._settled if r < self._horizon]:
            del self._settled[r]

    def _stage(
        self, trades: Iterable[SignedTrade], check_signatures: bool = True
    ) -> tuple[dict[str, Balance], list[tuple[int, str]]]:
        """Apply ``trades`` in order to a scratch copy of the touched balances; raise on the
        first refusal. Nothing real changes here."""
        staged: dict[str, Balance] = {}
        ids: list[tuple[int, str]] = []  # (trade round, id) in order
        seen: set[str] = set()
        for st in trades:
            t, tx_id = st.trade, st.tx_id
            if t.round < self._horizon:
                raise SettlementError(tx_id, Reject.REPLAY, f"a contract of round {t.round}, "
                                      f"before the current round {self._horizon}")
            if tx_id in self._settled.get(t.round, ()) or tx_id in seen:
                raise SettlementError(tx_id, Reject.REPLAY, "already settled")
            for party in (t.buyer, t.seller):
                if party not in self._balances:
                    raise SettlementError(tx_id, Reject.UNKNOWN_PARTY, f"{party} has no account")
            bad = st.bad_signer(self.keys) if check_signatures else None
            if bad is not None:
                raise SettlementError(tx_id, Reject.BAD_SIGNATURE, f"signature of {bad}")
            b_money, b_energy = staged.get(t.buyer) or self._balances[t.buyer]
            s_money, s_energy = staged.get(t.seller) or self._balances[t.seller]
            amount = t.amount_cents
            if b_money < amount:
                raise SettlementError(
                    tx_id, Reject.OVERDRAFT_MONEY, f"{t.buyer} has {b_money} cents, owes {amount}"
                )
            if s_energy < t.wh:
                raise SettlementError(
                    tx_id, Reject.OVERDRAFT_ENERGY, f"{t.seller} has {s_energy} Wh, sells {t.wh}"
                )
            staged[t.buyer] = (b_money - amount, b_energy + t.wh)
            staged[t.seller] = (s_money + amount, s_energy - t.wh)
            ids.append((t.round, tx_id))
            seen.add(tx_id)
        return staged, ids

    def _commit(self, staged: dict[str, Balance], ids: list[tuple[int, str]]) -> None:
        self._balances.update(staged)
        for round_, tx_id in ids:
            self._settled.setdefault(round_, set()).add(tx_id)

    def transfer_money(self, src: str, dst: str, cents: int) -> int:
        """Move up to ``cents`` from ``src`` to ``dst`` (fines, compensations); never overdraws.
        Returns what moved."""
        money, energy = self.balance(src)
        d_money, d_energy = self.balance(dst)
        moved = max(0, min(cents, money))
        if src != dst:
            self._balances[src] = (money - moved, energy)
            self._balances[dst] = (d_money + moved, d_energy)
        return moved

    def settle(self, trade: SignedTrade, check_signatures: bool = True) -> None:
        """Settle one trade atomically, or raise SettlementError and change nothing."""
        self._commit(*self._stage((trade,), check_signatures))

    def settle_block(self, trades: Iterable[SignedTrade]) -> None:
        """Settle every trade of a block, or none of them (raising for the first refused)."""
        self._commit(*self._stage(trades))

    def settle_each(
        self, trades: Iterable[SignedTrade], committed: bool = False
    ) -> list[SettlementError | None]:
        """Settle trades one by one; a refused trade changes nothing and the rest go on.
        Returns, per trade, None when settled or the error that refused it.

        ``committed``: the trades come from a block consensus committed, whose every contract
        each honest member checked before accepting it (as a blockchain executes a validated
        block): their signatures are not checked a second time here. Replays, unknown parties
        and overdrafts still are."""
        outcomes: list[SettlementError | None] = []
        for st in trades:
            try:
                self.settle(st, check_signatures=not committed)
            except SettlementError as err:
                outcomes.append(err)
            else:
                outcomes.append(None)
        return outcomes
