"""Byzantine behaviours as wrappers around an honest node (never ``if byzantine`` in honest code).

Each wrapper holds the honest state machine and changes only what the faulty node does with
its input and output. ``abandon`` and ``false-audit`` are trading and auditing behaviours: on the
consensus path such a node is honest (see ``mlts``'s trader and auditor strategies).

``censor`` proposes blocks without the pending trades, ``slow-primary`` holds its proposals
just under the view timeout; ``withhold`` and ``withhold-half`` keep the decided block from the observers they should send
it to (DCE-PBFT's dissemination). ``equivocate`` is a coalition: faulty nodes know each other (``colluders``) and split the honest
members into two halves by position; an equivocating primary proposes block A to one half and
block B (A with its last two trades swapped: the same trades, so no member can refuse it as
censorship, another digest) to the other, and an equivocating member votes for A to the
first half and for B to the second (B's digest follows from A). With f+1 such members PBFT's
quorums can be split -- exactly what the safety checker must then report.
"""

from __future__ import annotations

from dataclasses import replace

from mlts_ray.consensus.instance import Instance
from mlts_ray.consensus.messages import (
    Certificate,
    Fetch,
    NewView,
    PrePrepare,
    Request,
    TradeFetch,
    Trades,
    ViewChange,
    Vote,
)
from mlts_ray.errors import MltsError
from mlts_ray.ledger.block import Block, BlockHeader
from mlts_ray.ledger.merkle import merkle_root
from mlts_ray.ledger.crypto import Identity, SigKind
from mlts_ray.ledger.tx import SignedOrder
from mlts_ray.net.node import Node, Ready

class Crash:
    """Stopped: takes in nothing, sends nothing."""

    def __init__(self, inner: Node, **_: object) -> None:
        self.inner = inner

    def step(self, event: object, now_us: int) -> Ready:
        return Ready()


class Silent:
    """Receives and keeps its state, never sends."""

    def __init__(self, inner: Node, **_: object) -> None:
        self.inner = inner

    def step(self, event: object, now_us: int) -> Ready:
        r = self.inner.step(event, now_us)
        r.sends = []
        return r


class Delay:
    """Sends everything ``delay_us`` late."""

    def __init__(self, inner: Node, delay_us: int = 200_000, **_: object) -> None:
        self.inner, self.delay_us = inner, delay_us

    def step(self, event: object, now_us: int) -> Ready:
        r = self.inner.step(event, now_us)
        r.hold_us += self.delay_us
        return r


def _corrupt(sig: bytes) -> bytes:
    return bytes((sig[0] ^ 0xFF,)) + sig[1:] if sig else bytes(64)


def forged(msg: object) -> object:
    """The same message with its own signature broken. Anything else it could sign is an
    error, not a silent pass-through: that was how a ``forge`` trader's orders went out
    intact (a certificate and a fetch carry no signature of the sender's own)."""
    if isinstance(msg, (Vote, Request, ViewChange, NewView)):
        return replace(msg, sig=_corrupt(msg.sig))
    if isinstance(msg, PrePrepare):
        return replace(msg, vote=replace(msg.vote, sig=_corrupt(msg.vote.sig)))
    if isinstance(msg, SignedOrder):
        return replace(msg, signature=_corrupt(msg.signature))
    if isinstance(msg, (Certificate, Fetch, TradeFetch, Trades)):
        return msg
    raise TypeError(f"forged(): nothing to forge in a {type(msg).__name__}")


class Forge:
    """Every message it signs goes out with a bad signature."""

    def __init__(self, inner: Node, **_: object) -> None:
        self.inner = inner

    def step(self, event: object, now_us: int) -> Ready:
        r = self.inner.step(event, now_us)
        r.sends = [(dst, forged(msg)) for dst, msg in r.sends]
        return r


def second_version(block: Block) -> BlockHeader | None:
    """The coalition's block B for a proposal A: A with its last two trades swapped, by the
    same proposer -- every trade of the request still in it (a block without one would be
    refused as censorship), another Merkle root. Every colluder derives B's header (hence its
    digest) from A alone -- the hash covers the header, not the proposer's signature. None
    when A has fewer than two trades to swap."""
    txs = swapped(block.txs)
    if txs is None:
        return None
    return replace(block.header, merkle_root=merkle_root(txs))


def swapped(txs: tuple[bytes, ...]) -> tuple[bytes, ...] | None:
    if len(txs) < 2 or txs[-1] == txs[-2]:
        return None
    return (*txs[:-2], txs[-1], txs[-2])


class Equivocate:
    """As primary: conflicting pre-prepares; as member: votes for two digests.

    The honest members are split into two halves by position; the first half is shown and
    told A, the second half B. Colluders get A and vote A to the first half, B to the second.
    """

    colludes = True  # every equivocating node knows the others (``colluders``)

    def __init__(
        self, inner: Node, me: Identity, inst: Instance,
        colluders: frozenset[int] = frozenset(), **_: object,
    ) -> None:
        self.inner, self.me, self.inst, self.colluders = inner, me, inst, colluders
        honest = [m for m in inst.members if m not in colluders]
        self.second_half = frozenset(honest[1::2])
        self.b_digest: dict[tuple[int, bytes], bytes] = {}  # (view, digest A) -> digest B
        self.b_proposal: dict[int, PrePrepare] = {}

    def step(self, event: object, now_us: int) -> Ready:
        if isinstance(event, PrePrepare):
            self._learn_b(event)
        r = self.inner.step(event, now_us)
        out: list[tuple[int, object]] = []
        for dst, msg in r.sends:
            if isinstance(msg, PrePrepare):
                out.append((dst, self._proposal_for(dst, msg, r)))
            elif isinstance(msg, Vote) and msg.kind in (SigKind.PREPARE, SigKind.COMMIT):
                out.append((dst, self._vote_for(dst, msg, r)))
            else:
                out.append((dst, msg))
        r.sends = out
        return r

    def _learn_b(self, pp: PrePrepare) -> None:
        key = (pp.vote.view, pp.vote.digest)
        if key not in self.b_digest:
            try:
                header = second_version(Block.decode(pp.block))
            except MltsError:
                header = None
            if header is not None:
                self.b_digest[key] = header.hash()

    def _proposal_for(self, dst: int, pp: PrePrepare, r: Ready) -> PrePrepare:
        if dst not in self.second_half:
            return pp
        view = pp.vote.view
        if view not in self.b_proposal:
            a = Block.decode(pp.block)
            if second_version(a) is None:
                return pp  # an empty block has no second version
            b = Block.create(
                self.me, chain=a.header.chain, height=a.header.height, kind=a.header.kind,
                round=a.header.round, prev_hash=a.header.prev_hash, txs=swapped(a.txs),
                anchor_root=a.header.anchor_root, last_commit=a.header.last_commit,
                credit_root=a.header.credit_root, evidence=a.evidence,
            )
            r.signs += 2
            self.b_proposal[view] = replace(pp, vote=replace(pp.vote, digest=b.hash).signed(self.me),
                                            block=b.encode())
            self.b_digest[(view, pp.vote.digest)] = b.hash
        return self.b_proposal[view]

    def _vote_for(self, dst: int, vote: Vote, r: Ready) -> Vote:
        other = self.b_digest.get((vote.view, vote.digest))
        if dst not in self.second_half or other is None:
            return vote
        r.signs += 1
        return replace(vote, digest=other).signed(self.me)


class Withhold:
    """Keeps the decided block to itself: every certificate it would send -- its part of the
    dissemination (as primary, as a member with a share, as a gossip relay or the client
    under ``vmc``) and its answers to fetches -- goes to nobody; it votes and proposes as an
    honest node does, so nothing it signs can convict it."""

    def __init__(self, inner: Node, inst: Instance, **_: object) -> None:
        self.inner, self.inst = inner, inst

    def step(self, event: object, now_us: int) -> Ready:
        r = self.inner.step(event, now_us)
        r.sends = [(dst, msg) for dst, msg in r.sends
                   if not (isinstance(msg, Certificate) and self.drops(dst))]
        return r

    def drops(self, dst: int) -> bool:
        return True


class WithholdHalf(Withhold):
    """Withholds the certificate from half of the observers (every other one, in the
    instance's order) and sends it to the rest: a finality split a timer must repair."""

    def __init__(self, inner: Node, inst: Instance, **_: object) -> None:
        super().__init__(inner, inst)
        self.cut = frozenset(inst.observers[::2])

    def drops(self, dst: int) -> bool:
        return dst in self.cut


def _replica(node: object) -> object:
    """The honest replica inside ``node`` (under a catch-up or another wrapper), or None."""
    while node is not None and not hasattr(node, "select"):
        node = getattr(node, "inner", None)
    return node


class Censor:
    """As primary, proposes valid blocks without the request's trades (an empty block, signed
    and well-formed): the pending trades are censored. Otherwise honest."""

    def __init__(self, inner: Node, **_: object) -> None:
        self.inner = inner
        replica = _replica(inner)
        if replica is not None:
            replica.select = lambda valid: []

    def step(self, event: object, now_us: int) -> Ready:
        return self.inner.step(event, now_us)


class SlowPrimary:
    """As primary, holds each proposal (a pre-prepare, a new view) for ``share`` of its view's
    timeout -- just under it -- and sends everything else on time."""

    share = 0.8

    def __init__(self, inner: Node, inst: Instance, **_: object) -> None:
        self.inner, self.inst = inner, inst

    def step(self, event: object, now_us: int) -> Ready:
        r = self.inner.step(event, now_us)
        views = [m.vote.view if isinstance(m, PrePrepare) else m.view
                 for _, m in r.sends if isinstance(m, (PrePrepare, NewView))]
        if views:
            r.hold_us += round(self.share * self.inst.timeout_us(max(views)))
        return r


def wrap(wrapper: type | None, node: Node, **context: object) -> Node:
    """``node`` under ``wrapper`` (None: honest, as a trading or auditing behaviour leaves
    consensus)."""
    return node if wrapper is None else wrapper(node, **context)
