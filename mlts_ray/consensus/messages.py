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
from mlts_ray.ledger.block import TAG_BLOCK
from mlts_ray.ledger.block import VERSION as BLOCK_VERSION
from mlts_ray.ledger.encoding import Reader, Writer
from mlts_ray.ledger.merkle import leaf_hash

(TAG_VOTE, TAG_PRE_PREPARE, TAG_REQUEST, TAG_VIEW_CHANGE, TAG_NEW_VIEW, TAG_CERTIFICATE,
 TAG_FETCH, TAG_COMMITS, TAG_TIMEOUT, TAG_TRADE_FETCH, TAG_TRADES) = range(20, 31)
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
    """The primary's signed proposal ``vote`` for the block ``block``.

    ``outlined`` (``consensus.proposal = "digests"``, Castro-Liskov): on the wire it is the
    block's outline -- its signed header and the RFC 6962 leaf hash of each trade, no trade and
    no evidence -- since the client multicast every trade in its request and every member holds
    the instance's evidence. A member may read ``block`` only once it holds every trade the
    outline names (``Replica._holds``); until then it waits for the request or fetches them.
    Otherwise the whole block is on the wire (``"block"``, the old protocol)."""

    vote: Vote
    block: bytes
    outlined: bool = False
    # Memo of the encoding: one object is sent to every member of a broadcast.
    _encoded: bytes | None = field(default=None, init=False, compare=False, repr=False)

    phase = "pre-prepare"

    def __reduce__(self):
        return PrePrepare, (self.vote, self.block, self.outlined)

    def encode(self) -> bytes:
        out = self._encoded
        if out is None:
            w = Writer(TAG_PRE_PREPARE, VERSION).blob(self.vote.encode()).u8(self.outlined)
            out = w.blob(outline(self.block) if self.outlined else self.block).value()
            object.__setattr__(self, "_encoded", out)
        return out

    def whole(self) -> PrePrepare:
        """The same proposal carrying its whole block (a view change's proof holds it so)."""
        return replace(self, outlined=False) if self.outlined else self


def outline(block: bytes) -> bytes:
    """A block's outline: its header and signature, and its trades' Merkle leaf hashes (from
    which the header's ``merkle_root`` follows), without the trades or the evidence."""
    r = Reader(block, "block", TAG_BLOCK, BLOCK_VERSION)
    header, sig = r.blob(), r.fixed(SIGNATURE_SIZE)
    txs = r.items(Reader.blob)
    w = Writer(TAG_BLOCK, BLOCK_VERSION).blob(header).fixed(sig, SIGNATURE_SIZE)
    return w.items([leaf_hash(t) for t in txs], lambda w_, h: w_.fixed(h, DIGEST)).value()


@dataclass(frozen=True, slots=True)
class Request(SignedBody):
    """The client's signed request: the round's signed trades (canonical bytes) for a block."""

    chain: str
    height: int
    client: str
    trades: tuple[bytes, ...]
    sig: bytes = b""
    # Memo of held(): one request object reaches every member in a process.
    _held: frozenset | None = field(default=None, init=False, compare=False, repr=False)

    phase = "request"
    kind, tag, signer = SigKind.REQUEST, TAG_REQUEST, "client"

    def held(self) -> frozenset[bytes]:
        """Its trades, as a set (what a member that holds this request holds)."""
        if self._held is None:
            object.__setattr__(self, "_held", frozenset(self.trades))
        return self._held

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
    # on the wire as the block's outline (``PrePrepare``): what a committed member sends a
    # member still changing views, which rebuilds the block from the trades it holds or
    # fetches it once; observers always get the whole block
    outlined: bool = False

    phase = "certificate"

    def encode(self) -> bytes:
        w = Writer(TAG_CERTIFICATE, VERSION).u8(self.outlined)
        w.blob(outline(self.block) if self.outlined else self.block)
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


@dataclass(frozen=True, slots=True)
class TradeFetch:
    """A member holding an outlined pre-prepare asks for the trades it names that it lacks, by
    their Merkle leaf hashes (the client first, then the primary). Unsigned: links are
    authenticated, and every trade carries its parties' signatures."""

    chain: str
    height: int
    hashes: tuple[bytes, ...]
    sender: str

    phase = "fetch"

    def encode(self) -> bytes:
        w = Writer(TAG_TRADE_FETCH, VERSION).text(self.chain).u64(self.height)
        return w.items(self.hashes, lambda w_, h: w_.fixed(h, DIGEST)).text(self.sender).value()


@dataclass(frozen=True, slots=True)
class Trades:
    """The answer to a :class:`TradeFetch`: the asked trades the sender holds."""

    chain: str
    height: int
    trades: tuple[bytes, ...]

    phase = "trades"

    def encode(self) -> bytes:
        w = Writer(TAG_TRADES, VERSION).text(self.chain).u64(self.height)
        return w.items(self.trades, Writer.blob).value()
