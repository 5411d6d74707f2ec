"""The differentiated credit model of DCE-PBFT (docs/architecture.md section 5): every number from
the config, every input a fact the chain proves.

A node holds two scores. ``credit``, its **consensus score**, decides its status and committee
seats; ``trading``, its **trading score**, records its conduct as a trader. Trading rewards only
ever raise the trading score -- a node cannot buy back a consensus penalty by trading -- while
trading offences count against both. Each round moves them, clipped to ``[0, maximum]``:

| who                                   | consensus score                                     |
|---------------------------------------|-----------------------------------------------------|
| proposer of the committed block       | + ``primary_reward``                                |
| signer of its commit certificate      | + 2 x ``consensus_phase_reward`` (late votes: 0)    |
| primary of a view the record blames   | - ``primary_timeout_penalty``                       |
| member absent from a failed round     | - 2 x ``consensus_phase_penalty``                   |
| proven equivocation / double vote / invalid block | 0, banned                               |
| trade offence (complaint, overdraft)  | - ``misbehaviour_penalty`` (trading score too)      |
| abandoned order (complaint)           | - ``abandon_penalty`` (trading score too)           |
| silent for ``idle_rounds`` rounds when due  | - ``idle_decay`` a round, down to ``idle_floor`` |
| below eligibility, active, unpenalised, not seated | + ``recovery_rate`` a round, up to eligibility |

A proven trade offence or abandoned order also bars the node from committee seats (status
``ineligible``) for ``offence_rounds`` rounds, doubling with each further one: a fraudster that
votes well would otherwise earn its consensus score straight back.

A node is due in a round when it sits on the committee or trades on the chain; an unseated node
with nothing to do there (a VMC off the main committee, a supervisor) never idles.

The trading score gains ``ordinary_trade_reward`` per settled trade (capped per round). Which
member did what comes from ``consensus.conduct`` (the certificate and the timeout record), never
from what a node is. Audits move consensus credit between auditor and target (never creating
any). Status follows the consensus score: below ``eligible_threshold`` a node may not sit on a
committee; below ``suspend_threshold`` it is suspended for ``suspend_rounds`` rounds; at 0 or
banned it is removed for good. The way back from suspension is the slow ``recovery_rate``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from mlts_ray.config import Credit
from mlts_ray.consensus.audit import credit_effects
from mlts_ray.consensus.complaints import upheld
from mlts_ray.consensus.conduct import Conduct
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
    """What the chain proves happened to a chain's nodes in one round."""

    roles: dict[str, Role]
    conduct: Conduct | None = None  # the committee's (consensus.conduct); None: no round ran
    banned: set[str] = field(default_factory=set)  # convicted by a proof on the chain
    settled: dict[str, int] = field(default_factory=dict)
    abandoned: dict[str, int] = field(default_factory=dict)
    trade_offences: dict[str, int] = field(default_factory=dict)  # complaints, overdrafts
    active: set[str] = field(default_factory=set)  # signed a trade, audit or complaint
    due: frozenset[str] = frozenset()  # had something to do: seated, or a trader of the chain
    complaints: list = field(default_factory=list)  # filed this round (consensus.complaints)


@dataclass(slots=True)
class Account:
    credit: float  # the consensus score
    trading: float  # the trading score
    banned: bool = False
    suspended_until: int = -1  # suspended while round < suspended_until
    last_active: int = -1  # the last round the node had a signature on the chain
    offences: int = 0  # proven trade offences and abandoned orders so far
    barred_until: int = -1  # no committee seat while round < barred_until (an offence's cool-off)


class CreditBook:
    """Credit and status of every node of one chain."""

    __slots__ = ("cfg", "accounts")

    def __init__(self, cfg: Credit, nodes: Iterable[str]) -> None:
        self.cfg = cfg
        self.accounts = {n: Account(cfg.initial, cfg.initial) for n in nodes}

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
        if round_ < a.barred_until:
            return Status.INELIGIBLE
        return Status.ACTIVE if a.credit >= self.cfg.eligible_threshold else Status.INELIGIBLE

    def eligible(self, node: str, round_: int) -> bool:
        return self.status(node, round_) == Status.ACTIVE

    def usable(self, node: str, round_: int) -> bool:
        """May fill a degraded committee / trade: not banned, not suspended."""
        return self.status(node, round_) in (Status.ACTIVE, Status.INELIGIBLE)

    def deltas(self, facts: RoundFacts) -> dict[str, float]:
        """The round's change of the consensus score per node, before audits, idle decay and
        recovery (those, and bans, are applied in :meth:`apply`)."""
        c = self.cfg
        out = dict.fromkeys(self.accounts, 0.0)
        conduct = facts.conduct
        if conduct is not None:
            if conduct.primary is not None:
                out[conduct.primary] += c.primary_reward
            for node in conduct.signers:
                out[node] += 2 * c.consensus_phase_reward
            for node in conduct.missing:
                out[node] -= 2 * c.consensus_phase_penalty
            for node in conduct.timed_out:
                out[node] -= c.primary_timeout_penalty
        for node, n in facts.abandoned.items():
            out[node] -= n * c.abandon_penalty
        for node, n in facts.trade_offences.items():
            out[node] -= n * c.misbehaviour_penalty
        return out

    def trading_deltas(self, facts: RoundFacts) -> dict[str, float]:
        """The round's change of the trading score: settled trades (capped), less offences."""
        c = self.cfg
        out = dict.fromkeys(self.accounts, 0.0)
        for node, n in facts.settled.items():
            out[node] += min(n * c.ordinary_trade_reward, c.ordinary_trade_reward_cap)
        for node, n in facts.abandoned.items():
            out[node] -= n * c.abandon_penalty
        for node, n in facts.trade_offences.items():
            out[node] -= n * c.misbehaviour_penalty
        return out

    def apply(self, deltas: Mapping[str, float], facts: RoundFacts,
              round_: int) -> dict[str, float]:
        """Apply the round: consensus ``deltas`` (audits included), the trading score, bans,
        idle decay and recovery. Returns the consensus credit actually moved per node."""
        c = self.cfg
        trading = self.trading_deltas(facts)
        present = facts.active | (facts.conduct.present if facts.conduct else frozenset())
        seated = set(facts.conduct.signers | facts.conduct.missing) if facts.conduct else set()
        moved: dict[str, float] = {}
        for node, a in self.accounts.items():
            before = a.credit
            if node in present or node not in facts.due:  # idle means: silent when due
                a.last_active = round_
            if node in facts.banned or a.banned:
                a.banned, a.credit, a.trading = True, 0.0, 0.0
                moved[node] = -before
                continue
            d = deltas.get(node, 0.0)
            if d == 0.0 and round_ - a.last_active > c.idle_rounds:
                d = -min(c.idle_decay, max(0.0, a.credit - c.idle_floor))
            elif (d == 0.0 and node in present and node not in seated
                  and round_ >= a.suspended_until and a.credit < c.eligible_threshold):
                d = min(c.recovery_rate, c.eligible_threshold - a.credit)
            a.credit = min(c.maximum, max(0.0, a.credit + d))
            a.trading = min(c.maximum, max(0.0, a.trading + trading.get(node, 0.0)))
            proven = facts.trade_offences.get(node, 0) + facts.abandoned.get(node, 0)
            if proven:  # consensus work cannot buy a fraud back: no seat for a while
                a.offences += proven
                a.barred_until = round_ + 1 + c.offence_rounds * 2 ** min(a.offences - 1, 10)
            if a.credit == 0.0:
                a.banned = True
            elif a.credit < c.suspend_threshold and round_ + 1 >= a.suspended_until:
                a.suspended_until = round_ + 1 + c.suspend_rounds
            moved[node] = a.credit - before
        return moved


def judge_complaints(facts: RoundFacts, keys, stake: float) -> dict[str, float]:
    """Each of the round's complaints by ``consensus.complaints.upheld`` alone: an upheld one
    counts against the accused, a false one costs its complainant ``stake``. Returns the
    stakes lost per complainant."""
    lost: dict[str, float] = {}
    for c in facts.complaints:
        facts.active.add(c.complainant)
        if upheld(c, keys):
            counts = facts.abandoned if c.reason == "abandoned" else facts.trade_offences
            counts[c.accused] = counts.get(c.accused, 0) + 1
        else:
            lost[c.complainant] = lost.get(c.complainant, 0.0) + stake
    return lost


def misbehaved(facts: RoundFacts) -> set[str]:
    """Whom the chain holds something against this round: what an audit is upheld on."""
    return facts.banned | set(facts.abandoned) | set(facts.trade_offences)


def close_round(book: CreditBook, facts: RoundFacts, stakes: Mapping[str, float],
                audits: Iterable, round_: int) -> dict[str, float]:
    """The round's whole credit update, as the chain makes it and ``mlts verify`` replays it:
    conduct and trading deltas, lost complaint stakes, audits (``consensus.audit``), then
    :meth:`CreditBook.apply`. Returns the consensus credit moved per node."""
    deltas = book.deltas(facts)
    for node, d in stakes.items():
        deltas[node] -= d
    for audit in audits:
        for node, d in credit_effects(audit).items():
            deltas[node] += d
        facts.active.add(audit.auditor)
    return book.apply(deltas, facts, round_)


# --- the credit table as chain state ------------------------------------------------------------

TAG_CREDIT_LEAF = 30


def credit_leaf(node: str, credit: float, trading: float, status: str) -> bytes:
    """One node's row of the credit table: name, consensus and trading score (each its
    shortest exact decimal) and status, canonically encoded."""
    w = Writer(TAG_CREDIT_LEAF, 2).text(node).text(repr(float(credit)))
    return w.text(repr(float(trading))).text(status).value()


def credit_root(rows: Iterable[tuple[str, float, float, str]]) -> bytes:
    """RFC 6962 Merkle root over the table's rows in node order: what a block's header
    carries as ``credit_root``."""
    return merkle_root([credit_leaf(*row) for row in sorted(rows)])


def book_root(book: CreditBook, round_: int) -> bytes:
    """The root of ``book`` as the credit table stands for ``round_``."""
    return credit_root((n, a.credit, a.trading, str(book.status(n, round_)))
                       for n, a in book.accounts.items())
