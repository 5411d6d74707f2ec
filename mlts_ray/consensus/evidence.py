"""Proofs of misbehaviour: typed containers of signed statements, checked by one pure function
(consensus-specs' ``ProposerSlashing`` / ``AttesterSlashing`` shape).

- :class:`Equivocation`: two signed pre-prepares by one primary for one chain, height and view,
  for different blocks.
- :class:`DoubleVote`: two signed prepares (or two signed commits) by one member for one chain,
  height and view, for different blocks.
- :class:`InvalidProposal`: a signed pre-prepare of a block that breaks the instance's rules
  (checked against the instance it claims to belong to).

``offender(proof, keys, inst)`` is the whole judgement: the node the proof convicts, or None
for a proof that does not hold (a forged or mismatched pair, a valid block, a bad signature).
A ban follows from that alone -- never from who reported it. A bad signature is not a proof:
anyone can make bytes that fail to verify under someone else's name, so it stays a local
observation of the authenticated link and is penalised there, never banned.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlts_ray.consensus.checks import check_block  # the rules a member applies
from mlts_ray.consensus.instance import Instance
from mlts_ray.consensus.messages import Vote
from mlts_ray.errors import EncodingError, MltsError
from mlts_ray.ledger.block import Block
from mlts_ray.ledger.crypto import KeyRing, SigKind
from mlts_ray.ledger.encoding import Reader, Writer


TAG_EQUIVOCATION, TAG_DOUBLE_VOTE, TAG_INVALID_PROPOSAL = 40, 41, 42
VERSION = 1


@dataclass(frozen=True, slots=True)
class _VotePair:
    """Two signed statements of one signer; the subclass says what they must share."""

    a: Vote
    b: Vote
    tag = 0

    def encode(self) -> bytes:
        return Writer(self.tag, VERSION).blob(self.a.encode()).blob(self.b.encode()).value()


@dataclass(frozen=True, slots=True)
class Equivocation(_VotePair):
    kind = "equivocation"
    tag = TAG_EQUIVOCATION


@dataclass(frozen=True, slots=True)
class DoubleVote(_VotePair):
    kind = "double-vote"
    tag = TAG_DOUBLE_VOTE


@dataclass(frozen=True, slots=True)
class InvalidProposal:
    vote: Vote  # the signed pre-prepare
    block: bytes
    kind = "invalid-block"
    tag = TAG_INVALID_PROPOSAL

    def encode(self) -> bytes:
        return Writer(self.tag, VERSION).blob(self.vote.encode()).blob(self.block).value()


def decode_proof(data: bytes) -> Equivocation | DoubleVote | InvalidProposal:
    """The proof in ``data`` (an evidence transaction's body); EncodingError if it is none."""
    tag = data[0] if data else None
    cls = {TAG_EQUIVOCATION: Equivocation, TAG_DOUBLE_VOTE: DoubleVote,
           TAG_INVALID_PROPOSAL: InvalidProposal}.get(tag)
    if cls is None:
        raise EncodingError("evidence", f"unknown proof type {tag}")
    r = Reader(data, "evidence", tag, VERSION)
    first, second = Vote.decode(r.blob()), r.blob()
    r.done()
    return cls(first, second) if cls is InvalidProposal else cls(first, Vote.decode(second))


Proof = Equivocation | DoubleVote | InvalidProposal


def offender(proof: object, keys: KeyRing, inst: Instance | None = None) -> str | None:
    """Who ``proof`` convicts, or None if it proves nothing. Pure: same proof, same answer."""
    if isinstance(proof, Equivocation):
        return _pair(proof.a, proof.b, (SigKind.PRE_PREPARE,), keys)
    if isinstance(proof, DoubleVote):
        return _pair(proof.a, proof.b, (SigKind.PREPARE, SigKind.COMMIT), keys)
    if isinstance(proof, InvalidProposal) and inst is not None:
        return _invalid(proof, keys, inst)
    return None


def _pair(a: Vote, b: Vote, kinds: tuple[SigKind, ...], keys: KeyRing) -> str | None:
    if not (isinstance(a, Vote) and isinstance(b, Vote)):
        return None
    same = (a.kind, a.chain, a.height, a.view, a.sender) == (b.kind, b.chain, b.height, b.view,
                                                            b.sender)
    if not same or a.kind not in kinds or a.digest == b.digest:
        return None
    return a.sender if a.valid(keys) and b.valid(keys) else None


def _invalid(proof: InvalidProposal, keys: KeyRing, inst: Instance) -> str | None:
    v = proof.vote
    if not isinstance(v, Vote) or v.kind != SigKind.PRE_PREPARE:
        return None
    if (v.chain, v.height) != (inst.chain, inst.height) or v.sender not in inst.member_names:
        return None
    if v.sender != inst.names[inst.primary(v.view)] or not v.valid(keys):
        return None
    try:  # the signature binds the digest, so only the block with that hash convicts
        if Block.decode(proof.block).hash != v.digest:
            return None
    except MltsError:
        return None
    problem, _, _ = check_block(inst, proof.block, v.digest)
    return v.sender if problem else None
