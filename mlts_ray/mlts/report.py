"""What a round produced, as typed facts: the model's only output (docs/architecture.md
section 2).

The model (``mlts``) never writes a result row. Each chain reports what happened -- blocks with
their certificates, each trade's outcome, the consensus instance it ran, credit changes,
audits, the period's meter close, anchor checks, what the network carried, balances -- as
the small frozen records below, collected in a :class:`Report` per piece of a round. The
model's parts pass these facts to each other (the settled trades of a main block, a VPP's
intra-VPP trades for its market); the collector (``mlts_ray.results``) is the only place that
turns them into rows, and the only reader of the nodes' behaviour labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlts_ray.consensus.audit import Audit
from mlts_ray.ledger.block import Block
from mlts_ray.ledger.tx import SignedTrade, Trade
from mlts_ray.mlts.energy import Reading

if TYPE_CHECKING:
    from mlts_ray.mlts.consensus_round import Outcome

SETTLED = "settled"


@dataclass(frozen=True, slots=True)
class TradeOutcome:
    """One trade of the round and what became of it: ``settled``, ``rejected`` (with the
    reason) or ``not-committed``; ``height``: the block that holds it, if one does."""

    trade: SignedTrade
    status: str
    reason: str = ""
    height: int | None = None

    @property
    def settled(self) -> bool:
        return self.status == SETTLED


@dataclass(frozen=True, slots=True)
class CommittedBlock:
    """A block appended to its chain; ``certificate``: the canonical commit certificate that
    proves it (empty for a collaborative block, which no consensus round makes)."""

    block: Block
    certificate: bytes = b""


@dataclass(frozen=True, slots=True)
class Carried:
    """What the network carried of one phase of a chain's round."""

    chain: str
    phase: str
    count: int
    bytes: int
    dropped: int


@dataclass(frozen=True, slots=True)
class ConsensusRun:
    """One consensus instance as the chain ran it: its outcome (what the chain knows and what
    each node reported, unjudged) and whether its committee had to be filled below
    eligibility."""

    chain: str
    outcome: Outcome
    degraded: bool
    absent: frozenset[str] = frozenset()  # offline this round: they sent nothing, as if crashed


@dataclass(frozen=True, slots=True)
class CreditChange:
    """A node's credit after the round's close."""

    chain: str
    node: str
    role: str
    credit: float
    delta: float
    trading_credit: float
    in_committee: bool
    status: str


@dataclass(frozen=True, slots=True)
class AuditResult:
    chain: str
    audit: Audit


@dataclass(frozen=True, slots=True)
class AnchorCheck:
    """A collaborative block as a main block anchors it, and whether its Merkle proof holds."""

    main_height: int
    chain: str
    collab_height: int
    collab_hash: bytes
    collab_type: int
    ok: bool


@dataclass(frozen=True, slots=True)
class MeterClose:
    """A node's period as the grid closed it: its meter reading, the Wh it sold and bought in
    settled trades, and what the grid took and supplied."""

    chain: str
    node: str
    online: bool
    reading: Reading
    sold_wh: int
    bought_wh: int
    import_wh: int
    export_wh: int


@dataclass(frozen=True, slots=True)
class MarketClose:
    """A market's period: its settled trades and, for a VPP's market, the Wh its nodes traded
    across VPPs and its meters' close (the cross-VPP book has neither)."""

    chain: str
    settled: tuple[Trade, ...]
    cross_wh: int | None = None  # None: the cross-VPP book itself
    meters: tuple[MeterClose, ...] = ()


@dataclass(frozen=True, slots=True)
class AccountBalance:
    node: str
    money: int
    energy_wh: int


@dataclass(slots=True)
class Report:
    """Facts of one piece of a round, kind by kind, each list in the order it happened."""

    consensus: list[ConsensusRun] = field(default_factory=list)
    messages: list[Carried] = field(default_factory=list)
    blocks: list[CommittedBlock] = field(default_factory=list)
    trades: list[TradeOutcome] = field(default_factory=list)
    credits: list[CreditChange] = field(default_factory=list)
    audits: list[AuditResult] = field(default_factory=list)
    anchors: list[AnchorCheck] = field(default_factory=list)
    energy: list[MeterClose] = field(default_factory=list)
    market: list[MarketClose] = field(default_factory=list)
    balances: list[AccountBalance] = field(default_factory=list)

    def settled(self) -> list[Trade]:
        """The trades this piece settled, in order."""
        return [t.trade.trade for t in self.trades if t.settled]


def balances_of(accounts: dict[str, tuple[int, int]]) -> list[AccountBalance]:
    """``(money, energy)`` per account as facts, by account name."""
    return [AccountBalance(n, m, e) for n, (m, e) in sorted(accounts.items())]
