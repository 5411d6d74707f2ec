"""The ledger split by chain: each side chain holds its VPP's accounts (and its own share of
the grid's account); what crosses shards -- a cross-VPP trade, a main-chain audit's fine
between a grid node and a VMC -- goes through a two-phase protocol (docs/architecture.md
sections 4 and 7).

1. **Prepare**: each shard a step touches locks the accounts it holds of the step's
   parties and reports their balances and which of the step's trade ids it has settled. A
   locked account refuses every other change until the step ends.
2. **Decide**: the coordinator (the main chain's contract) settles the step on a scratch
   ledger made of the reports alone -- the same ``Settlement`` rules, in the same order -- so
   the outcome equals one undivided ledger's exactly, overdrafts from earlier trades of the
   same block included. It costs one round trip, where voting per trade would need one per
   refusal (a refused trade changes what the later ones find).
3. **Commit** writes each shard's new balances and settled ids and unlocks; **abort**
   unlocks and changes nothing. A commit may only write the accounts it locked.

Conservation is checked from the per-shard totals. The grid's account is the sum of its
shares. ``Ledgers`` keeps the ``Settlement`` interface, so chain code is unchanged, and sends
work that stays in one shard straight to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from mlts_ray.errors import LedgerError, SettlementError
from mlts_ray.ledger.crypto import KeyRing
from mlts_ray.ledger.settlement import GRID, Balance, Settlement, sum_balances
from mlts_ray.ledger.tx import SignedTrade
from mlts_ray.names import MAIN, home_of

def _asks(parties: Iterable[str], owners: Mapping[tuple[int, str], set[str]]
          ) -> dict[str, tuple[list[str], list[tuple[int, str]]]]:
    """Each touched shard's part of a step: the parties it holds and the trade ids it keeps
    (so a shard's prepare, and its message, grow with its own share, not the step's)."""
    asks: dict[str, tuple[list[str], list[tuple[int, str]]]] = {}
    for n in parties:
        asks.setdefault(home_of(n), ([], []))[0].append(n)
    for key, homes in owners.items():
        for home in homes:
            asks.setdefault(home, ([], []))[1].append(key)
    return asks


@dataclass(frozen=True, slots=True)
class Prepared:
    """A shard's vote: the balances of the step's parties it holds, now locked, and the
    step's trade ids it has settled (by round), with its replay horizon."""

    shard: str
    step: int
    balances: Mapping[str, Balance]
    settled: Mapping[int, frozenset[str]]
    horizon: int


@dataclass(slots=True)
class ChainAccounts:
    """One chain's accounts; ``locks`` maps a locked account to the step holding it."""

    name: str
    ledger: Settlement
    locks: dict[str, int] = field(default_factory=dict)

    def check_unlocked(self, *nodes: str) -> None:
        for node in nodes:
            if node in self.locks:
                raise LedgerError(f"account {node}",
                                  f"locked by cross-chain step {self.locks[node]}")

    def prepare(
        self, step: int, nodes: Iterable[str], tx_ids: Iterable[tuple[int, str]]
    ) -> Prepared:
        """Lock the accounts of ``nodes`` this shard holds; report them and which of
        ``tx_ids`` it has settled."""
        held = sorted({n for n in nodes if self.ledger.holds(n)})
        self.check_unlocked(*held)
        for n in held:
            self.locks[n] = step
        return Prepared(self.name, step, {n: self.ledger.balance(n) for n in held},
                        self.ledger.settled_among(tx_ids), self.ledger.horizon)

    def commit(self, step: int, balances: Mapping[str, Balance],
               settled: Iterable[tuple[int, str]]) -> None:
        mine = {n for n, s in self.locks.items() if s == step}
        if not set(balances) <= mine:
            raise LedgerError(f"shard {self.name}", f"step {step} writes accounts it did "
                              f"not lock: {sorted(set(balances) - mine)}")
        for n, (money, energy) in balances.items():
            if energy < 0 or (money < 0 <= self.ledger.balance(n)[0]):
                raise LedgerError(f"account {n}", f"step {step} would overdraw it")
        self.ledger.apply(balances, settled)
        self.abort(step)

    def abort(self, step: int) -> None:
        for n in [n for n, s in self.locks.items() if s == step]:
            del self.locks[n]

    def holds(self, node: str) -> bool:
        return self.ledger.holds(node)

    def balance(self, node: str) -> Balance:
        return self.ledger.balance(node)


class Shard(Protocol):
    """What a cross-chain step needs of a shard, wherever it lives (``ChainAccounts`` here;
    a runtime's stand-in for one held by another process)."""

    name: str

    def holds(self, node: str) -> bool: ...
    def balance(self, node: str) -> Balance: ...
    def prepare(self, step: int, nodes: Iterable[str],
                tx_ids: Iterable[tuple[int, str]]) -> Prepared: ...
    def commit(self, step: int, balances: Mapping[str, Balance],
               settled: Iterable[tuple[int, str]]) -> None: ...
    def abort(self, step: int) -> None: ...


class ShardOp(StrEnum):
    """A shard's method as a step names it: a runtime ships a batch of them to the process
    that holds the shards and answers them there (``apply``)."""

    BALANCE = "balance"
    PREPARE = "prepare"
    COMMIT = "commit"
    ABORT = "abort"

    def apply(self, shard: Shard, args: tuple) -> Any:
        return getattr(shard, self.value)(*args)


Call = tuple[Shard, ShardOp, tuple]  # (shard, method, arguments)
FanOut = Callable[[list[Call]], list[Any]]


def one_by_one(calls: list[Call]) -> list[Any]:
    """The shards' answers, each asked in turn (a runtime asks remote shards together)."""
    return [op.apply(shard, args) for shard, op, args in calls]


class Ledgers:
    """Every shard, behind the ``Settlement`` interface the chains use."""

    def __init__(self, keys: KeyRing, balances: Mapping[str, Balance],
                 shards: Mapping[str, Shard] | None = None,
                 fan_out: FanOut = one_by_one) -> None:
        """``balances``: the opening balances of the shards made here; ``shards``: shards
        made by their side chains' services (``mlts.side_service``), in this process or,
        through a runtime's stand-in, in another -- asked together through ``fan_out``. The
        totals and balances below are of the shards in this process."""
        self.keys, self.fan_out = keys, fan_out
        split: dict[str, dict[str, Balance]] = {}
        for node, balance in balances.items():
            if node != GRID:
                split.setdefault(home_of(node), {})[node] = balance
        grid = balances.get(GRID, (0, 0))
        self.parts: dict[str, Shard] = {
            name: ChainAccounts(name, Settlement(
                keys, {**accounts, GRID: grid if name == MAIN else (0, 0)}))
            for name, accounts in split.items()}
        self.parts.setdefault(MAIN, ChainAccounts(MAIN, Settlement(keys, {GRID: grid})))
        self.parts.update(shards or {})
        self._step = 0

    # --- one shard --------------------------------------------------------------------------

    def _part(self, node: str) -> Shard:
        part = self.parts.get(home_of(node))
        if part is None or not part.holds(node):
            raise LedgerError(f"account {node}", "no such account")
        return part

    def _local(self, node: str) -> Settlement:
        part = self._part(node)
        part.check_unlocked(node)
        return part.ledger

    def balance(self, node: str) -> Balance:
        if node == GRID:
            return self.totals_of(GRID)
        return self._part(node).balance(node)

    def here(self) -> list[ChainAccounts]:
        """The shards in this process."""
        return [p for p in self.parts.values() if isinstance(p, ChainAccounts)]

    def totals_of(self, account: str) -> Balance:
        return sum_balances(p.ledger.balance(account) for p in self.here())

    def mint(self, node: str, wh: int) -> None:
        self._local(node).mint(node, wh)

    def close(self, node: str, deficit_wh: int, feed_in: int, retail: int) -> tuple[int, int]:
        """The grid's share of ``node``'s shard takes the bill."""
        return self._local(node).close(node, deficit_wh, feed_in, retail)

    def forget_before(self, round_: int) -> None:
        for p in self.here():
            p.ledger.forget_before(round_)

    def balances(self) -> dict[str, Balance]:
        out = {n: b for p in self.here() for n, b in p.ledger.balances().items()
               if n != GRID}
        out[GRID] = self.totals_of(GRID)
        return out

    def totals(self) -> Balance:
        """From the shards' own totals."""
        return sum_balances(p.ledger.totals() for p in self.here())

    # --- across shards ----------------------------------------------------------------------

    def settle_each(
        self, trades: Iterable[SignedTrade], committed: bool = False
    ) -> list[SettlementError | None]:
        """As ``Settlement.settle_each``; trades whose parties span shards settle by the
        two-phase protocol, all of the call's trades as one step (their order matters)."""
        trades = list(trades)
        names = {home_of(n) for t in trades for n in (t.trade.buyer, t.trade.seller)}
        if len(names) == 1 and (part := self.parts.get(names.pop())) is not None:
            part.check_unlocked(*(n for t in trades for n in (t.trade.buyer, t.trade.seller)))
            return part.ledger.settle_each(trades, committed)
        parties = {n for t in trades for n in (t.trade.buyer, t.trade.seller)}
        # a settled trade's id is kept by each party's shard: either may see its replay
        owners = {(t.trade.round, t.tx_id): {home_of(t.trade.buyer),
                                             home_of(t.trade.seller)} for t in trades}
        return self._step_over(parties, owners, lambda s: s.settle_each(trades, committed))

    def transfer_money(self, src: str, dst: str, cents: int) -> int:
        """As ``Settlement.transfer_money``; across shards by the two-phase protocol."""
        if home_of(src) == home_of(dst):
            ledger = self._local(src)  # src first: the error names it, as Settlement's does
            self._local(dst)
            return ledger.transfer_money(src, dst, cents)
        for n in (src, dst):
            self._part(n)  # both accounts exist, or a named error before anything is locked
        return self._step_over({src, dst}, {}, lambda s: s.transfer_money(src, dst, cents))

    def _step_over(self, parties: set[str], owners: Mapping[tuple[int, str], set[str]],
                   decide: Callable[[Settlement], Any]) -> Any:
        """Prepare every shard holding one of ``parties``, ``decide`` on the scratch
        ledger their reports make, then commit each shard's new balances and settled ids
        (abort on any failure before the commit: nothing half-applied)."""
        self._step += 1
        step = self._step
        asks = _asks(parties, owners)
        touched = [p for name, p in self.parts.items() if name in asks]
        votes: list[Prepared] = []
        try:
            votes = self.fan_out([(p, ShardOp.PREPARE, (step, *asks[p.name]))
                                  for p in touched])
            settled: dict[int, set[str]] = {}
            for vote in votes:
                for rnd, ids in vote.settled.items():
                    settled.setdefault(rnd, set()).update(ids)
            scratch = Settlement.scratch(
                self.keys, {n: b for v in votes for n, b in v.balances.items()}, settled,
                max((v.horizon for v in votes), default=0))
            result = decide(scratch)
        except BaseException:
            for p in touched:
                p.abort(step)
            raise
        done = [key for key in scratch.settled_ids() if key in owners]
        self.fan_out([(p, ShardOp.COMMIT, (step, {n: scratch.balance(n) for n in vote.balances},
                                     [key for key in done if p.name in owners[key]]))
                      for p, vote in zip(touched, votes, strict=True)])
        return result
