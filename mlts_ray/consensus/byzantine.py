"""Byzantine behaviours as wrappers around an honest node (never ``if byzantine`` in honest code).

Each wrapper holds the honest state machine and changes only what the faulty node does with
its input and output. ``abandon`` and ``false-audit`` are trading and auditing behaviours: on the
consensus path such a node is honest (see ``mlts``'s trader and auditor strategies).

``equivocate`` is a coalition: faulty nodes know each other (``colluders``) and split the honest
members into two halves by position; an equivocating primary proposes block A to one half and
block B (A without its last trade) to the other and sends both to its colluders, and an
equivocating member votes for A to the first half and for B to the second. With f+1 such
members PBFT's quorums can be split -- exactly what the safety checker must then report.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from mlts_ray.consensus.instance import Instance
from mlts_ray.consensus.messages import NewView, PrePrepare, Request, ViewChange, Vote
from mlts_ray.ledger.block import Block
from mlts_ray.ledger.crypto import Identity, SigKind
from mlts_ray.net.node import Node, Ready

CONSENSUS_BEHAVIOURS = ("crash", "silent", "equivocate", "forge", "delay")


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
        r.sends.clear()
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
    """The same message with its own signature broken."""
    if isinstance(msg, (Vote, Request, ViewChange, NewView)):
        return replace(msg, sig=_corrupt(msg.sig))
    if isinstance(msg, PrePrepare):
        return replace(msg, vote=replace(msg.vote, sig=_corrupt(msg.vote.sig)))
    return msg  # a certificate carries only others' signatures


class Forge:
    """Every message it signs goes out with a bad signature."""

    def __init__(self, inner: Node, **_: object) -> None:
        self.inner = inner

    def step(self, event: object, now_us: int) -> Ready:
        r = self.inner.step(event, now_us)
        r.sends = [(dst, forged(msg)) for dst, msg in r.sends]
        return r


class Equivocate:
    """As primary: conflicting pre-prepares; as member: votes for two digests."""

    def __init__(
        self, inner: Node, me: Identity, inst: Instance,
        colluders: frozenset[int] = frozenset(), **_: object,
    ) -> None:
        self.inner, self.me, self.inst, self.colluders = inner, me, inst, colluders
        honest = [m for m in inst.members if m not in colluders]
        self.second_half = frozenset(honest[1::2])  # the honest half that is told "B"
        self.first: dict[int, bytes] = {}  # view -> first digest heard
        self.alternative: dict[int, bytes] = {}  # view -> digest B
        self.block_b: dict[int, PrePrepare] = {}

    def step(self, event: object, now_us: int) -> Ready:
        if isinstance(event, PrePrepare):  # a colluding primary sends us both A and B
            view, digest = event.vote.view, event.vote.digest
            if self.first.setdefault(view, digest) != digest:
                self.alternative.setdefault(view, digest)
        r = self.inner.step(event, now_us)
        out: list[tuple[int, object]] = []
        for dst, msg in r.sends:
            if isinstance(msg, PrePrepare):
                out.extend(self._split_proposal(dst, msg, r))
            elif isinstance(msg, Vote) and msg.kind in (SigKind.PREPARE, SigKind.COMMIT):
                out.append((dst, self._vote_for(dst, msg, r)))
            else:
                out.append((dst, msg))
        r.sends = out
        return r

    def _proposal_b(self, pp: PrePrepare, r: Ready) -> PrePrepare:
        """Block A without its last trade, under the same view: a second valid proposal."""
        view = pp.vote.view
        if view not in self.block_b:
            a = Block.decode(pp.block)
            h = a.header
            b = Block.create(
                self.me, chain=h.chain, height=h.height, kind=h.kind, round=h.round,
                prev_hash=h.prev_hash, txs=a.txs[:-1], anchor_root=h.anchor_root,
            )
            r.signs += 2
            self.block_b[view] = PrePrepare(replace(pp.vote, digest=b.hash).signed(self.me), b.encode())
            self.alternative[view] = b.hash
        return self.block_b[view]

    def _split_proposal(self, dst: int, pp: PrePrepare, r: Ready) -> list[tuple[int, object]]:
        b = self._proposal_b(pp, r)
        if b.vote.digest == pp.vote.digest:  # an empty block has no second version
            return [(dst, pp)]
        if dst in self.colluders:
            return [(dst, pp), (dst, b)]
        return [(dst, b if dst in self.second_half else pp)]

    def _vote_for(self, dst: int, vote: Vote, r: Ready) -> Vote:
        if dst not in self.second_half:
            return vote
        other = self.alternative.get(vote.view)
        if other is None or other == vote.digest:
            other = hashlib.sha256(b"equivocate" + vote.digest).digest()
        r.signs += 1
        return replace(vote, digest=other).signed(self.me)


WRAPPERS: dict[str, type] = {
    "crash": Crash,
    "silent": Silent,
    "delay": Delay,
    "forge": Forge,
    "equivocate": Equivocate,
}


def wrap(behaviour: str, node: Node, **context: object) -> Node:
    """``node`` under ``behaviour``; trading/auditing behaviours leave consensus honest."""
    cls = WRAPPERS.get(behaviour)
    return node if cls is None else cls(node, **context)
