"""The differentiated credit model of DCE-PBFT (docs/architecture.md section 5): every number from the config.

Each round a node's credit moves by what its role earned or lost, clipped to ``[0, maximum]``:

| role        | reward                                   | penalty                                    |
|-------------|------------------------------------------|--------------------------------------------|
| primary     | block committed in its view              | its view timed out; equivocation or an invalid block proven: 0, banned |
| consensus   | per phase voted in time for the decision | per phase missed; conflicting vote / bad signature; proven double vote: 0, banned |
| supervisory | online the whole round                   | audit lost: its stake                      |
| ordinary    | per trade settled (capped)               | order abandoned; bad signature, overdraft, replay |

Audits move credit between auditor and target (never creating any). Status follows credit:
below ``eligible_threshold`` a node may not sit on a committee; below ``suspend_threshold`` it
is suspended for ``suspend_rounds`` rounds; at 0 or banned it is removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from mlts_ray.config import Credit
from mlts_ray.ledger.encoding import Writer
from mlts_ray.ledger.merkle import merkle_root


class Role(StrEnum):
    PRIMARY = "primary"
    CONSENSUS = "consensus"
    SUPERVISORY = "supervisory"
    ORDINARY = "ordinary"


class Status(StrEnum):
    ACTIVE = "active"  # eligible for committees and trading
    INELIGIBLE = "ineligible"  # trades, but credit below the committee threshold
    SUSPENDED = "suspended"
    BANNED = "banned"


@dataclass(slots=True)
class RoundFacts:
    """What happened to a chain's nodes in one round, as the credit model needs it."""

    roles: dict[str, Role]
    decided: bool = False
    primary: str | None = None  # primary of the deciding view
    timed_out_primaries: list[str] = field(default_factory=list)
    voted_in_time: dict[str, int] = field(default_factory=dict)  # member -> phases (0..2)
    bad_votes: dict[str, int] = field(default_factory=dict)  # conflicting votes + bad signatures
    banned: set[str] = field(default_factory=set)  # proven equivocation / invalid block / double vote
    online: set[str] = field(default_factory=set)
    settled: dict[str, int] = field(default_factory=dict)
    abandoned: dict[str, int] = field(default_factory=dict)
    trade_offences: dict[str, int] = field(default_factory=dict)  # bad signature, overdraft, replay


@dataclass(slots=True)
class Account:
    credit: float
    banned: bool = False
    suspended_until: int = -1  # suspended while round < suspended_until


class CreditBook:
    """Credit and status of every node of one chain."""

    __slots__ = ("cfg", "accounts")

    def __init__(self, cfg: Credit, nodes: Iterable[str]) -> None:
        self.cfg = cfg
        self.accounts = {n: Account(cfg.initial) for n in nodes}

    def credit(self, node: str) -> float:
        return self.accounts[node].credit

    def credits(self) -> dict[str, float]:
        return {n: a.credit for n, a in self.accounts.items()}

    def status(self, node: str, round_: int) -> Status:
        a = self.accounts[node]
        if a.banned:
            return Status.BANNED
        if round_ < a.suspended_until:
            return Status.SUSPENDED
        return Status.ACTIVE if a.credit >= self.cfg.eligible_threshold else Status.INELIGIBLE

    def eligible(self, node: str, round_: int) -> bool:
        return self.status(node, round_) == Status.ACTIVE

    def usable(self, node: str, round_: int) -> bool:
        """May fill a degraded committee / trade: not banned, not suspended."""
        return self.status(node, round_) in (Status.ACTIVE, Status.INELIGIBLE)

    def deltas(self, facts: RoundFacts) -> dict[str, float]:
        """The round's change per node before audits (bans are applied in :meth:`apply`)."""
        c = self.cfg
        out = dict.fromkeys(self.accounts, 0.0)
        for node, role in facts.roles.items():
            if role == Role.PRIMARY and facts.decided and node == facts.primary:
                out[node] += c.primary_reward
            elif role in (Role.PRIMARY, Role.CONSENSUS) and facts.decided:
                phases = facts.voted_in_time.get(node, 0)
                out[node] += phases * c.consensus_phase_reward
                out[node] -= (2 - phases) * c.consensus_phase_penalty
            elif role == Role.SUPERVISORY and node in facts.online:
                out[node] += c.supervisory_reward
            elif role == Role.ORDINARY:
                out[node] += min(facts.settled.get(node, 0) * c.ordinary_trade_reward,
                                 c.ordinary_trade_reward_cap)
            out[node] -= facts.abandoned.get(node, 0) * c.abandon_penalty
            out[node] -= facts.trade_offences.get(node, 0) * c.misbehaviour_penalty
            out[node] -= facts.bad_votes.get(node, 0) * c.conflicting_vote_penalty
        for node in facts.timed_out_primaries:
            out[node] -= c.primary_timeout_penalty
        return out

    def apply(
        self, deltas: Mapping[str, float], banned: Iterable[str], round_: int
    ) -> dict[str, float]:
        """Apply deltas and bans; return the credit actually moved per node (after clipping)."""
        moved: dict[str, float] = {}
        banned = set(banned)
        for node, a in self.accounts.items():
            before = a.credit
            if node in banned or a.banned:
                a.banned, a.credit = True, 0.0
            else:
                a.credit = min(self.cfg.maximum, max(0.0, a.credit + deltas.get(node, 0.0)))
                if a.credit == 0.0:
                    a.banned = True
                elif a.credit < self.cfg.suspend_threshold and round_ + 1 >= a.suspended_until:
                    a.suspended_until = round_ + 1 + self.cfg.suspend_rounds
            moved[node] = a.credit - before
        return moved


# --- the credit table as chain state ------------------------------------------------------------

TAG_CREDIT_LEAF = 30


def credit_leaf(node: str, credit: float, status: str) -> bytes:
    """One node's row of the credit table: name, credit (its shortest exact decimal) and
    status, canonically encoded."""
    return Writer(TAG_CREDIT_LEAF, 1).text(node).text(repr(float(credit))).text(status).value()


def credit_root(rows: Iterable[tuple[str, float, str]]) -> bytes:
    """RFC 6962 Merkle root over the table's rows in node order: what a block's header
    carries as ``credit_root``."""
    return merkle_root([credit_leaf(*row) for row in sorted(rows)])


def book_root(book: CreditBook, round_: int) -> bytes:
    """The root of ``book`` as the credit table stands for ``round_``."""
    return credit_root((n, book.credit(n), str(book.status(n, round_))) for n in book.accounts)
