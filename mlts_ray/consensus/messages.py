"""PBFT protocol messages: frozen, slotted values with one canonical ``encode()``.

Every signed message signs the domain-separated root of its ``body()`` (kind and chain inside
the root), so a prepare can never be replayed as a commit or on another chain. Phase names are
the ``messages`` table's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields, replace

from mlts_ray.errors import EncodingError
from mlts_ray.ledger.crypto import SIGNATURE_SIZE, Identity, KeyRing, SigKind, signing_root
from mlts_ray.ledger.encoding import Reader, Writer

(TAG_VOTE, TAG_PRE_PREPARE, TAG_REQUEST, TAG_VIEW_CHANGE, TAG_NEW_VIEW, TAG_CERTIFICATE,
 TAG_FETCH, TAG_COMMITS, TAG_TIMEOUT) = range(20, 29)
VERSION = 1
DIGEST = 32
ZERO_DIGEST = bytes(DIGEST)

PHASE_OF_KIND = {
    SigKind.PRE_PREPARE: "pre-prepare",
    SigKind.PREPARE: "prepare",
    SigKind.COMMIT: "commit",
    SigKind.REPLY: "reply",
}


@dataclass(frozen=True, slots=True)
class Vote:
    """A signed statement ``sender`` says ``kind`` for ``digest`` at ``(height, view)``: the
    header of a pre-prepare, a prepare, a commit or a reply."""

    kind: SigKind
    chain: str
    height: int
    view: int
    digest: bytes
    sender: str
    sig: bytes = b""
    # Memo of the encoded body: one vote object is delivered to many receivers in a process.
    _body: bytes | None = field(default=None, init=False, compare=False, repr=False)
    _root: bytes | None = field(default=None, init=False, compare=False, repr=False)
    # (key ring, answer) of the last check: the same object reaches every receiver of a
    # broadcast in a process, and its signature is checked once for all of them.
    _checked: tuple | None = field(default=None, init=False, compare=False, repr=False)

    @property
    def phase(self) -> str:
        return PHASE_OF_KIND[self.kind]

    def __reduce__(self):
        # The memos stay in their process (the last one holds a key ring).
        return Vote, (self.kind, self.chain, self.height, self.view, self.digest, self.sender, self.sig)

    def body(self) -> bytes:
        body = self._body
        if body is None:
            w = Writer(TAG_VOTE, VERSION).u8(self.kind).text(self.chain).u64(self.height)
            body = w.u32(self.view).fixed(self.digest, DIGEST).text(self.sender).value()
            object.__setattr__(self, "_body", body)
        return body

    def signed(self, me: Identity) -> Vote:
        return replace(self, sig=me.sign_root(self.kind, self.chain, self.body()))

    def valid(self, keys: KeyRing) -> bool:
        checked = self._checked
        if checked is not None and checked[0] is keys:
            return checked[1]
        root = self._root
        if root is None:
            root = signing_root(self.kind, self.chain, self.body())
            object.__setattr__(self, "_root", root)
        answer = keys.verify_root(self.sender, root, self.sig)
        object.__setattr__(self, "_checked", (keys, answer))
        return answer

    def encode(self) -> bytes:
        return Writer(TAG_VOTE, VERSION).blob(self.body()).fixed(self.sig, SIGNATURE_SIZE).value()

    @classmethod
    def decode(cls, data: bytes) -> Vote:
        outer = Reader(data, "vote", TAG_VOTE, VERSION)
        body, sig = outer.blob(), outer.fixed(SIGNATURE_SIZE)
        outer.done()
        r = Reader(body, "vote", TAG_VOTE, VERSION)
        kind = r.u8()
        if kind not in PHASE_OF_KIND:
            raise EncodingError("vote", f"kind {kind} is not a vote kind")
        out = cls(SigKind(kind), r.text(), r.u64(), r.u32(), r.fixed(DIGEST), r.text(), sig)
        r.done()
        return out


class SignedBody:
    """A statement signed whole by one node: ``signer`` names the field holding its name,
    ``kind`` the signing domain, ``tag`` its encoding; subclasses give ``body()`` and fields
    ``chain`` and ``sig``. Messages, the chain's stored view changes, complaints and audit
    claims all are one."""

    # The memo of valid(): (key ring, answer). A slot of the mixin, not a dataclass field, so
    # it is never compared, printed, nor carried over by ``replace``.
    __slots__ = ("_checked",)
    kind: SigKind
    tag: int
    signer: str

    def signed(self, me: Identity):
        return replace(self, sig=me.sign_root(self.kind, self.chain, self.body()))

    def valid(self, keys: KeyRing) -> bool:
        # One object reaches every receiver of a broadcast in a process: its body (a request
        # carries every trade of the round) is built and checked once, as for Vote.
        checked = getattr(self, "_checked", None)  # unset until the first check
        if checked is not None and checked[0] is keys:
            return checked[1]
        answer = keys.verify(getattr(self, self.signer), self.kind, self.chain, self.body(), self.sig)
        object.__setattr__(self, "_checked", (keys, answer))
        return answer

    def __reduce__(self):
        # The memo stays in its process (it holds a key ring).
        return type(self), tuple(getattr(self, f.name) for f in fields(self) if f.init)

    def encode(self) -> bytes:
        return Writer(self.tag, VERSION).blob(self.body()).fixed(self.sig, SIGNATURE_SIZE).value()


@dataclass(frozen=True, slots=True)
class PrePrepare:
    """The primary's signed proposal ``vote`` carrying the proposed block's bytes."""

    vote: Vote
    block: bytes

    phase = "pre-prepare"

    def encode(self) -> bytes:
        return Writer(TAG_PRE_PREPARE, VERSION).blob(self.vote.encode()).blob(self.block).value()


@dataclass(frozen=True, slots=True)
class Request(SignedBody):
    """The client's signed request: the round's signed trades (canonical bytes) for a block."""

    chain: str
    height: int
    client: str
    trades: tuple[bytes, ...]
    sig: bytes = b""

    phase = "request"
    kind, tag, signer = SigKind.REQUEST, TAG_REQUEST, "client"

    def body(self) -> bytes:
        w = Writer(TAG_REQUEST, VERSION).text(self.chain).u64(self.height).text(self.client)
        return w.items(self.trades, Writer.blob).value()


@dataclass(frozen=True, slots=True)
class Prepared:
    """Proof that a digest was prepared in a view: the pre-prepare (with its block) and q-1
    prepares from distinct backups."""

    pre_prepare: PrePrepare
    prepares: tuple[Vote, ...]

    def encode(self) -> bytes:
        w = Writer(TAG_PRE_PREPARE, VERSION).blob(self.pre_prepare.encode())
        return w.items(self.prepares, lambda w_, v: w_.blob(v.encode())).value()


@dataclass(frozen=True, slots=True)
class Timeout(SignedBody):
    """The signed part of a view change, as a chain stores it: ``sender`` timed out in view
    ``new_view - 1`` of ``round`` and asks for ``new_view``. ``accepted``: the digest of the
    pre-prepare it had accepted in the view it leaves (zero for none) -- what tells a primary
    that proposed nothing in time from one whose proposal the committee failed to finish.
    ``prepared``: the hash of the prepared proof the view change carries (zero for none). The
    round is signed so that a view change of one failed round cannot stand for another at the
    same height."""

    chain: str
    height: int
    round: int
    new_view: int
    sender: str
    accepted: bytes = ZERO_DIGEST
    prepared: bytes = ZERO_DIGEST
    sig: bytes = b""

    kind, tag, signer = SigKind.VIEW_CHANGE, TAG_TIMEOUT, "sender"

    def body(self) -> bytes:
        w = Writer(TAG_VIEW_CHANGE, VERSION).text(self.chain).u64(self.height).u64(self.round)
        w.u32(self.new_view).text(self.sender).fixed(self.accepted, DIGEST)
        return w.fixed(self.prepared, DIGEST).value()

    @classmethod
    def decode(cls, data: bytes) -> Timeout:
        r = Reader(data, "timeout", TAG_TIMEOUT, VERSION)
        b = Reader(r.blob(), "timeout body", TAG_VIEW_CHANGE, VERSION)
        out = cls(b.text(), b.u64(), b.u64(), b.u32(), b.text(), b.fixed(DIGEST),
                  b.fixed(DIGEST), r.fixed(SIGNATURE_SIZE))
        b.done()
        r.done()
        return out


@dataclass(frozen=True, slots=True)
class ViewChange(SignedBody):
    """A member's request for a new view: its signed :class:`Timeout` statement plus the
    prepared proof (if any) whose hash the statement signs."""

    chain: str
    height: int
    new_view: int
    sender: str
    prepared: Prepared | None
    round: int = 0
    accepted: bytes = ZERO_DIGEST
    sig: bytes = b""

    phase = "view-change"
    kind, tag, signer = SigKind.VIEW_CHANGE, TAG_VIEW_CHANGE, "sender"

    def statement(self) -> Timeout:
        proof = hashlib.sha256(self.prepared.encode()).digest() if self.prepared else ZERO_DIGEST
        return Timeout(self.chain, self.height, self.round, self.new_view, self.sender,
                       self.accepted, proof, self.sig)

    def body(self) -> bytes:
        return self.statement().body()

    def encode(self) -> bytes:
        w = Writer(self.tag, VERSION).blob(self.body())
        w.blob(self.prepared.encode() if self.prepared else b"")
        return w.fixed(self.sig, SIGNATURE_SIZE).value()


@dataclass(frozen=True, slots=True)
class NewView(SignedBody):
    chain: str
    view: int
    sender: str
    view_changes: tuple[ViewChange, ...]
    pre_prepare: PrePrepare
    sig: bytes = b""

    phase = "new-view"
    kind, tag, signer = SigKind.NEW_VIEW, TAG_NEW_VIEW, "sender"

    def body(self) -> bytes:
        w = Writer(TAG_NEW_VIEW, VERSION).text(self.chain).u32(self.view).text(self.sender)
        w.items(self.view_changes, lambda w_, vc: w_.blob(vc.encode()))
        return w.blob(self.pre_prepare.encode()).value()


@dataclass(frozen=True, slots=True)
class Certificate:
    """DCE-PBFT: the committed block and the q signed commits that prove it, sent by the primary
    to the N-k nodes outside the committee. It needs no signature of its own."""

    block: bytes
    commits: tuple[Vote, ...]

    phase = "certificate"

    def encode(self) -> bytes:
        w = Writer(TAG_CERTIFICATE, VERSION).blob(self.block)
        return w.items(self.commits, lambda w_, v: w_.blob(v.encode())).value()


def encode_commits(commits: tuple[Vote, ...]) -> bytes:
    """The canonical bytes of a block's commit certificate as the chain stores it: its signed
    commits, by sender (the block itself is stored beside it)."""
    ordered = sorted(commits, key=lambda v: v.sender)
    return Writer(TAG_COMMITS, VERSION).items(ordered, lambda w, v: w.blob(v.encode())).value()


def decode_commits(data: bytes) -> tuple[Vote, ...]:
    r = Reader(data, "commit certificate", TAG_COMMITS, VERSION)
    out = tuple(Vote.decode(raw) for raw in r.items(Reader.blob))
    r.done()
    return out


def commit_digest(commits: tuple[Vote, ...]) -> bytes:
    """What the next block's header commits to (its ``last_commit``)."""
    return hashlib.sha256(encode_commits(commits)).digest()


@dataclass(frozen=True, slots=True)
class Fetch:
    """A member that saw q commits for a block it does not hold asks one committer for it (the
    answer is a certificate). Unsigned: links are authenticated, and the answer proves itself."""

    chain: str
    height: int
    digest: bytes
    sender: str

    phase = "fetch"

    def encode(self) -> bytes:
        w = Writer(TAG_FETCH, VERSION).text(self.chain).u64(self.height)
        return w.fixed(self.digest, DIGEST).text(self.sender).value()
