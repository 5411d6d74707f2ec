"""Audits with staked credit (DESIGN section 5).

A supervisor stakes ``audit_stake`` credit to audit a node for the round. If the node misbehaved
it loses ``audit_penalty`` credit and pays ``audit_fine_cents`` to the auditor, who gets its stake
back plus half the credit the node lost. If not, the stake goes to the audited node and the
auditor pays it ``audit_compensation_cents``. Credit only ever moves between the two.

An honest supervisor audits nodes that drew complaints this round (evidence against them); a
``false-audit`` supervisor accuses honest nodes -- and, since outcomes rest on evidence, keeps
losing its stake.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from mlts_ray.config import Credit


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


def choose_targets(
    auditor: str, behaviour: str, pool: Sequence[str], honest: Collection[str],
    suspects: Collection[str], count: int, rng: random.Random,
) -> list[str]:
    wanted = honest if behaviour == "false-audit" else suspects
    candidates = [n for n in pool if n != auditor and n in wanted]
    return rng.sample(candidates, min(count, len(candidates)))


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
