"""What a chain proves about its committee's conduct in one round (pure; docs/architecture.md
section 5).

Credit may only follow from what every node can check on the chain, so a round's consensus
conduct is read from two signed records, never from what the simulator knows about a node:

- the block's **commit certificate** (stored beside it): its q signers voted in time, and the
  view it was signed in says which views before it failed;
- the round's **record** (:class:`RoundRecord`), which the chain's next block carries as an
  evidence transaction whenever the round changed view, ended without a block or convicted
  someone: every signed view-change statement (``messages.Timeout``) its members made, and the
  round's proofs of misbehaviour. A statement says who was still there when a view failed, and
  whether it had accepted that view's proposal.

From them, :func:`conduct` names exactly:

- the **primary** whose block was committed, and the **signers** of its certificate (late votes,
  after the quorum closed, are in no certificate and earn nothing, as Aardvark has it);
- the **timed-out primaries**: the primary of a failed view when at least f+1 other members
  (so at least one honest one) signed that they timed out in it without having accepted a
  proposal, and none says it had accepted one -- a primary whose proposal arrived but whose
  committee could not finish is not blamed for the committee, and f liars cannot frame it; the
  primary of a later view only when q members had asked for its view (before that it may not
  propose at all);
- the **missing** members of a round without a block: those with no signed statement in the
  record at all, i.e. provably absent where a vote was due (Cosmos' downtime rule: absence from
  the signed record).

A faulty member can shield a faulty primary by claiming it accepted, but f faulty members cannot
frame an honest one: a primary's blame needs f+1 signed statements, a member's absence needs the
absence of its own signed statement. (An honest primary whose proposal no honest member received
in time is blamed: to the chain a proposal too slow for the network is no proposal.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
import dataclasses
from dataclasses import dataclass

from mlts_ray.consensus.instance import TimeoutSeen, fault_bound, quorum
from mlts_ray.consensus.messages import ZERO_DIGEST, Timeout, ViewChange, Vote
from mlts_ray.errors import MltsError
from mlts_ray.ledger.crypto import KeyRing
from mlts_ray.ledger.encoding import Reader, Writer

TAG_ROUND_RECORD = 43
VERSION = 1


@dataclass(frozen=True, slots=True)
class RoundRecord:
    """What the chain's next block carries about one round of one chain: the signed
    view-change statements its members made (one per sender and view, in that order) and the
    proofs of misbehaviour (``consensus.evidence``, canonical bytes) first seen in it, and the
    complaints filed and the audits staked in it (``consensus.complaints``,
    ``consensus.audit``), and on a side chain the period's metering (opaque here). A block
    carries one record for every round since the chain's previous block that failed, changed
    view, convicted someone, had a complaint or an audit, or metered energy -- so every credit
    change and every Wh has its round on the chain."""

    chain: str
    round: int
    statements: tuple[Timeout, ...] = ()
    proofs: tuple[bytes, ...] = ()
    complaints: tuple[bytes, ...] = ()  # consensus.complaints, in filing order
    audits: tuple[bytes, ...] = ()  # consensus.audit.AuditClaim, in supervisor order
    metering: bytes = b""  # the period's signed meter report (mlts.metering), if any
    kind = "round-record"

    def encode(self) -> bytes:
        w = Writer(TAG_ROUND_RECORD, VERSION).text(self.chain).u64(self.round)
        w.items(self.statements, lambda w_, t: w_.blob(t.encode()))
        w.items(self.proofs, Writer.blob).items(self.complaints, Writer.blob)
        return w.items(self.audits, Writer.blob).blob(self.metering).value()

    @classmethod
    def decode(cls, data: bytes) -> RoundRecord:
        r = Reader(data, "round record", TAG_ROUND_RECORD, VERSION)
        chain, rnd = r.text(), r.u64()
        statements = tuple(Timeout.decode(b) for b in r.items(Reader.blob))
        proofs, complaints = tuple(r.items(Reader.blob)), tuple(r.items(Reader.blob))
        out = cls(chain, rnd, statements, proofs, complaints, tuple(r.items(Reader.blob)),
                  r.blob())
        r.done()
        return out


def round_record(chain: str, round_: int, statements: Iterable[Timeout],
                 proofs: Iterable[bytes] = (), complaints: Iterable[bytes] = ()) -> RoundRecord:
    """The canonical record (statements deduplicated, ordered by sender, view; proofs as
    given, which the chain orders by offender)."""
    unique = {(t.sender, t.new_view): t for t in statements
              if (t.chain, t.round) == (chain, round_)}
    return RoundRecord(chain, round_, tuple(unique[key] for key in sorted(unique)), tuple(proofs),
                       tuple(complaints))


class SentViewChanges:
    """The network's report of a member's view changes as they leave it (``ChainSim.on_sent``,
    outside any faulty wrapper): each one a member actually sends is reported once
    (``instance.TimeoutSeen``), so the round's record holds what went onto the network -- a
    silent or crashed member's never does, a forger's fails its signature, a late one is late
    but there. The network calls it once per message sent, not per copy nor per step: a
    wrapper around every member's step cost 4 % of a PBFT round at N = 100."""

    __slots__ = ("members", "said")

    def __init__(self, members: Iterable[int]) -> None:
        self.members = frozenset(members)  # only members change views
        self.said: set[tuple[int, int]] = set()

    def __call__(self, src: int, msg: object) -> TimeoutSeen | None:
        if not isinstance(msg, ViewChange) or src not in self.members:
            return None
        if (src, msg.new_view) in self.said:
            return None
        self.said.add((src, msg.new_view))
        return TimeoutSeen(msg.statement())


@dataclass(frozen=True, slots=True)
class Conduct:
    """A round's consensus conduct as the chain proves it."""

    decided: bool
    primary: str | None  # proposer of the committed block
    signers: frozenset[str]  # the certificate's signers: voted in time
    timed_out: tuple[str, ...]  # primaries of failed views the record blames, one per view
    missing: frozenset[str]  # no block and no signed statement: absent where a vote was due
    present: frozenset[str]  # members with a signature for the round on the chain
    views: int  # views the round went through (the deciding one included)


def valid_statements(record: RoundRecord | None, members: Sequence[str],
                     keys: KeyRing) -> list[Timeout]:
    """The record's statements that are for its chain and round (which fix the height), by
    members, validly signed (others prove nothing and are ignored)."""
    if record is None:
        return []
    seated = set(members)
    return [t for t in record.statements
            if t.sender in seated and t.round == record.round
            and t.chain == record.chain and t.new_view >= 1 and _valid(t, keys)]


def _valid(t: Timeout, keys: KeyRing) -> bool:
    try:
        return t.valid(keys)
    except MltsError:
        return False


def conduct(members: Sequence[str], commits: Sequence[Vote],
            record: RoundRecord | None, keys: KeyRing) -> Conduct:
    """``members``: the round's committee in primary order (view v's primary is
    ``members[v % k]``); ``commits``: the checked certificate of the round's block (empty when
    the round made none); ``record``: the round's record (None when the chain carries none:
    then no view failed)."""
    k = len(members)
    statements = valid_statements(record, members, keys)
    decided = bool(commits)
    if decided:
        view = commits[0].view
        views = view + 1
        signers = frozenset(v.sender for v in commits)
        primary = members[view % k]
    else:
        # the last view of a failed round times out into no statement (the round gives up)
        views = max((t.new_view for t in statements), default=0) + 1
        signers, primary = frozenset(), None
    timed_out = [members[w % k] for w in _blamed_views(members, _by_view(statements), views,
                                                        decided)]
    spoke = frozenset(t.sender for t in statements)
    missing = frozenset() if decided else frozenset(members) - spoke
    return Conduct(decided, primary, signers, tuple(timed_out), missing, signers | spoke, views)


def _by_view(statements) -> dict[int, dict[str, Timeout]]:
    """Failed view -> sender -> its statement (asking for the next view)."""
    out: dict[int, dict[str, Timeout]] = {}
    for t in statements:
        out.setdefault(t.new_view - 1, {})[t.sender] = t
    return out


def _blamed_views(members: Sequence[str], by_view, views: int, decided: bool) -> list[int]:
    """The failed views whose primary the statements blame, in order."""
    k = len(members)
    f, q = fault_bound(k), quorum(k)
    out = []
    for w in sorted(by_view):
        if decided and w >= views - 1:
            continue  # a statement for the deciding view or later is no failure
        # the primary of a later view may propose only once q members asked for its view
        if w > 0 and len(by_view.get(w - 1, {})) < q:
            continue
        others = [t for s, t in by_view[w].items() if s != members[w % k]]
        # f+1 others (so one honest) saw nothing in time, and nobody saw a proposal
        if len(others) >= f + 1 and not any(t.accepted != ZERO_DIGEST for t in others):
            out.append(w)
    return out


def minimal(record: RoundRecord, members: Sequence[str], commits: Sequence[Vote],
            keys: KeyRing) -> tuple[RoundRecord, Conduct]:
    """The record with the fewest statements that prove the same conduct, and that conduct
    (what the pruned record proves, as ``mlts verify`` reads it back): for a blamed view,
    f+1 of the others' (and, for a later view, q of the previous view's); for a view whose
    primary is cleared, one that saw its proposal; in a round without a block, each member's
    latest (its presence, and the views the round went through). Everything else proves
    nothing more and would only weigh down the next block: unpruned, a 3-view round of PBFT
    among 100 nodes put 36 KB into the next block, which its primary sends 99 times."""
    full = conduct(members, commits, record, keys)
    k = len(members)
    f, q = fault_bound(k), quorum(k)
    by_view = _by_view(valid_statements(record, members, keys))
    keep: dict[tuple[str, int], Timeout] = {}

    def take(w: int, senders) -> None:
        for sender in senders:
            t = by_view[w][sender]
            keep[(t.sender, t.new_view)] = t

    if not full.decided:  # presence: every member's latest statement
        latest: dict[str, Timeout] = {}
        for w in sorted(by_view):
            latest.update(by_view[w])
        for t in latest.values():
            keep[(t.sender, t.new_view)] = t
    for w in _blamed_views(members, by_view, full.views, full.decided):
        others = sorted(s for s in by_view[w] if s != members[w % k])
        take(w, others[: f + 1])
        if w > 0:
            take(w - 1, sorted(by_view[w - 1])[:q])
    # a view with any statement kept keeps one that clears its primary, if there is one
    for w in sorted({t.new_view - 1 for t in keep.values()}):
        cleared = sorted(s for s, t in by_view[w].items()
                         if s != members[w % k] and t.accepted != ZERO_DIGEST)
        take(w, cleared[:1])
    out = RoundRecord(record.chain, record.round, tuple(keep[key] for key in sorted(keep)),
                      record.proofs, record.complaints, record.audits)
    # a logic error here, never an input: the pruned record must blame and clear the same
    # (who merely spoke in a decided round no longer counts as present: it was not in time)
    proven = conduct(members, commits, out, keys)
    if dataclasses.replace(proven, present=full.present) != full:
        raise AssertionError(f"{record.chain} round {record.round}: pruning changed conduct")
    return out, proven

