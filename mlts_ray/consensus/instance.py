"""What every node of a chain knows about one round's consensus instance, and the outputs
(observations) nodes report to the driver."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlts_ray.consensus.messages import Vote
from mlts_ray.ledger.block import BlockKind
from mlts_ray.ledger.crypto import KeyRing


def fault_bound(n: int) -> int:
    """``f = floor((n - 1) / 3)``: Byzantine members a committee of ``n`` tolerates."""
    return (n - 1) // 3


def quorum(n: int) -> int:
    """``q = ceil((n + f + 1) / 2)``; equals ``2f + 1`` when ``n = 3f + 1``."""
    return -(-(n + fault_bound(n) + 1) // 2)


@dataclass(frozen=True, slots=True)
class Instance:
    """One block's consensus on one chain. Node indices refer to ``names``.

    ``members`` run pre-prepare/prepare/commit (all N nodes for PBFT, the k committee members for
    DCE-PBFT), listed in primary order: the primary of view ``v`` is ``members[v % k]``.
    ``observers`` (DCE-PBFT's N-k others) learn the block from the primary's certificate.
    ``client`` sends the request and collects the replies.
    """

    chain: str
    height: int
    round: int
    kind: BlockKind
    prev_hash: bytes
    anchor_root: bytes
    names: tuple[str, ...]
    members: tuple[int, ...]
    observers: tuple[int, ...]
    client: int
    view_timeout_us: int
    max_view_changes: int
    keys: KeyRing
    # Nodes that do not hold the chain's last block (they missed it), and that block's commit
    # certificate, which the members holding it hand to a lagging node that asks (catch-up).
    lagging: frozenset[int] = frozenset()
    prev_certificate: object = field(default=None, compare=False)  # messages.Certificate
    last_commit: bytes = bytes(32)  # the hash the next block's header commits to (see Block)
    credit_root: bytes = bytes(32)  # the chain's credit table when the round began (see Block)
    evidence: tuple[bytes, ...] = ()  # proofs of misbehaviour the block must carry (see Block)
    # what members know to set the round's timers from its request (consensus.timing.Timing:
    # the configured timeout, or the chain's normal case); None for an instance built by hand,
    # whose timers are as given
    timing: object = field(default=None, compare=False)
    # "digests": pre-prepares carry the block's outline (messages.PrePrepare); "block": all of it
    proposal: str = "digests"
    # how the certificate reaches the observers (consensus.dissemination), gossip's fan-out,
    # the experiment's seed (gossip's and observers' draws), when an observer without a
    # certificate first fetches it and how long it gives a fetch (0: from the view timeout);
    # consensus.timing sets them
    dissemination: str = "primary"
    fanout: int = 4
    seed: int = 0
    observe_us: int = 0
    refetch_us: int = 0
    # how long after the request a member expects the primary's proposal (0: only the view
    # timer); consensus.timing sets it from the normal case
    expect_us: int = 0
    index_of: dict[str, int] = field(default_factory=dict, compare=False)
    member_names: frozenset[str] = field(default_factory=frozenset, compare=False)
    # Block checks shared by the nodes of one process: a pure function of (block, digest) here,
    # so every receiver gets the same answer and is still charged its own verifications. Not
    # init fields: ``dataclasses.replace`` gives the copy fresh ones, so a copy sent to another
    # process never carries (or shares) this one's.
    block_checks: dict[tuple[bytes, bytes], tuple] = field(
        default_factory=dict, init=False, compare=False)
    decoded: dict[tuple[str, bytes], object] = field(  # ("block" | "trade", bytes) -> object
        default_factory=dict, init=False, compare=False)

    f: int = field(default=0, compare=False)
    q: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index_of", {n: i for i, n in enumerate(self.names)})
        object.__setattr__(self, "member_names", frozenset(self.names[m] for m in self.members))
        object.__setattr__(self, "f", fault_bound(len(self.members)))
        object.__setattr__(self, "q", quorum(len(self.members)))

    @property
    def k(self) -> int:
        return len(self.members)

    def primary(self, view: int) -> int:
        return self.members[view % len(self.members)]

    @property
    def fetch_wait_us(self) -> int:
        """How long a member holding an outlined pre-prepare waits for the request before it
        fetches the trades it lacks, and between fetches: two hops at their slow end (the
        request left before the proposal, over at most as slow a path)."""
        hop = getattr(self.timing, "hop_us", None)
        return 2 * hop if hop else max(1, self.view_timeout_us // 8)

    @property
    def first_fetch_us(self) -> int:
        """When an observer without a certificate first fetches one: after the decision and
        the dissemination it expects (``observe_us``), or twice the view timeout."""
        return self.observe_us or 2 * self.view_timeout_us

    def refetch_after_us(self, tries: int) -> int:
        """How long an observer gives its ``tries``-th fetch (from 0) before it asks another
        member: a fetch's round trip with margin (``refetch_us``), or four view timeouts,
        doubling per try."""
        return (self.refetch_us or 4 * self.view_timeout_us) << min(tries, 20)

    def timeout_us(self, view: int) -> int:
        """View ``v`` waits ``timeout * 2**v``: doubling keeps view changes live under delay."""
        return self.view_timeout_us << view


# --- observations a node reports (the driver stamps them with time and node) -------------------


@dataclass(frozen=True, slots=True)
class Committed:
    """This node holds the committed block. ``prepared_by``/``committed_by``: members whose
    prepare/commit for this digest reached the node before it committed (empty for observers)."""

    height: int
    view: int
    digest: bytes
    block: bytes
    prepared_by: frozenset[str] = frozenset()
    committed_by: frozenset[str] = frozenset()
    proof: object = field(default=None, compare=False)  # the messages.Certificate it holds
    prepares: tuple = field(default=(), compare=False)  # its q-1 signed prepares (members)


@dataclass(frozen=True, slots=True)
class Proposed:
    view: int
    digest: bytes


@dataclass(frozen=True, slots=True)
class Accepted:
    """The signed pre-prepare a node accepted; pooled, two of them prove equivocation."""

    vote: Vote


@dataclass(frozen=True, slots=True)
class ViewEntered:
    view: int


@dataclass(frozen=True, slots=True)
class TimeoutSeen:
    """A member put a view change on the wire: its signed statement (``messages.Timeout``),
    which the chain records for the round (``consensus.conduct.SentViewChanges``)."""

    statement: object


@dataclass(frozen=True, slots=True)
class Answered:
    """The client holds f+1 matching replies."""

    digest: bytes


@dataclass(frozen=True, slots=True)
class GaveUp:
    """No commit after ``max_view_changes`` view changes: the node stops trying this round."""

    view: int


@dataclass(frozen=True, slots=True)
class Evidence:
    """Misbehaviour a node saw. ``kind``: ``bad-signature`` (attributed by the authenticated
    link), ``conflicting-vote`` (a valid vote for another digest than the accepted one),
    ``double-vote`` / ``equivocation`` (two valid signed statements for different digests:
    a proof), ``invalid-block`` (a signed proposal of an invalid block: a proof),
    ``non-member`` (consensus traffic from a node outside the committee), ``censorship`` (a
    proposal without valid trades of the request: the member does not take it, and the chain
    sees a primary whose proposal nobody had -- no penalty of its own)."""

    kind: str
    offender: str
    phase: str
    view: int = 0
    digest: bytes = b""  # what the offender signed, where it signed something
    detail: str = ""
    # the signed statements that make it a proof (consensus.evidence), or, for a conflicting
    # vote, the one signed vote this node holds (half of a double vote)
    proof: object = field(default=None, compare=False)
