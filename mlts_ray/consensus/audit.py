"""Audits with staked credit (docs/architecture.md section 5).

A supervisor stakes ``audit_stake`` credit to audit a node for the round, as a signed
:class:`AuditClaim` that the round's record carries. If the node misbehaved
it loses ``audit_penalty`` credit and pays ``audit_fine_cents`` to the auditor, who gets its stake
back plus half the credit the node lost. If not, the stake goes to the audited node and the
auditor pays it ``audit_compensation_cents``. Credit only ever moves between the two.

How a supervisor picks its targets is its own strategy (``Auditor`` and its variants): an
honest one audits nodes with evidence against them this round, a ``false-audit`` one accuses
nodes with none. Whether an audit is upheld rests on that evidence alone.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from mlts_ray.config import Credit
from mlts_ray.consensus.messages import SignedBody
from mlts_ray.ledger.crypto import SIGNATURE_SIZE, SigKind
from mlts_ray.ledger.encoding import Reader, Writer


TAG_AUDIT = 45
VERSION = 1


@dataclass(frozen=True, slots=True)
class AuditClaim(SignedBody):
    """A supervisor's signed audit (``AUDIT`` signing domain): it stakes ``stake`` credit that
    ``target`` misbehaved in ``round`` of ``chain``. The round's record carries it; its outcome
    follows from the chain's facts of that round (:func:`settle_audit`), never from the claim."""

    chain: str
    round: int
    auditor: str
    target: str
    stake: float
    sig: bytes = b""

    kind, tag, signer = SigKind.AUDIT, TAG_AUDIT, "auditor"

    def body(self) -> bytes:
        w = Writer(TAG_AUDIT, VERSION).text(self.chain).u64(self.round).text(self.auditor)
        return w.text(self.target).text(repr(float(self.stake))).value()

    @classmethod
    def decode(cls, data: bytes) -> AuditClaim:
        r = Reader(data, "audit", TAG_AUDIT, VERSION)
        b = Reader(r.blob(), "audit body", TAG_AUDIT, VERSION)
        chain, rnd, auditor, target, stake = b.text(), b.u64(), b.text(), b.text(), b.text()
        b.done()
        out = cls(chain, rnd, auditor, target, float(stake), r.fixed(SIGNATURE_SIZE))
        r.done()
        return out


@dataclass(frozen=True, slots=True)
class Audit:
    auditor: str
    target: str
    stake: float
    upheld: bool
    credit_moved: float  # to the auditor (negative: to the target)
    money_moved: int  # cents to the auditor (negative: to the target)

    @property
    def outcome(self) -> str:
        return "upheld" if self.upheld else "dismissed"


class Auditor:
    """A supervisor's own way of auditing (its strategy; the judgement, ``settle_audit``, never
    asks for it). Honest: audit the nodes with evidence against them this round."""

    def targets(self, me: str, pool: Sequence[str], suspects: Collection[str], count: int,
                rng: random.Random) -> list[str]:
        candidates = [n for n in pool if n != me and n in self.wanted(pool, suspects)]
        return rng.sample(candidates, min(count, len(candidates)))

    def wanted(self, pool: Sequence[str], suspects: Collection[str]) -> Collection[str]:
        return suspects


class FalseAuditor(Auditor):
    """``false-audit``: accuses nodes nothing is held against -- and, since outcomes rest on
    evidence, keeps losing its stake."""

    def wanted(self, pool, suspects):
        return set(pool) - set(suspects)


class AbstainingAuditor(Auditor):
    """A supervisor whose consensus role is faulty (``crash``, ``silent``, ``equivocate``,
    ``forge``, ``delay``): it audits nobody -- and, signing nothing, is idle on the chain."""

    def targets(self, me, pool, suspects, count, rng):
        return []


def settle_audit(
    cfg: Credit, auditor: str, target: str, misbehaved: bool,
    credit: Mapping[str, float], money: Mapping[str, int],
) -> Audit:
    """The audit's transfers, bounded by what the parties have (never below zero)."""
    if misbehaved:
        lost = min(cfg.audit_penalty, credit[target])
        fine = min(cfg.audit_fine_cents, money[target])
        return Audit(auditor, target, cfg.audit_stake, True, lost / 2, fine)
    stake = min(cfg.audit_stake, credit[auditor])
    pay = min(cfg.audit_compensation_cents, money[auditor])
    return Audit(auditor, target, cfg.audit_stake, False, -stake, -pay)


def credit_effects(audit: Audit) -> dict[str, float]:
    """Credit change per party: upheld -> target loses the penalty, auditor gains half of it."""
    if audit.upheld:
        return {audit.target: -2 * audit.credit_moved, audit.auditor: audit.credit_moved}
    return {audit.auditor: audit.credit_moved, audit.target: -audit.credit_moved}
