"""The oracle: metrics that need to know which nodes are honest (docs/architecture.md
section 8). The model never knows; the collector does, from the population's labels, and
judges each instance's trace (``mlts.consensus_round.Trace``) here:

- ``latency``: the instance's start (the client sends its request to the replicas) -> the
  q-th honest member's commit; ``finality``: the start -> every honest node holds the block.
  Both count from the start, whatever the primary did, so a primary's wait, a partition or a
  view change are always in them; ``proposed``: the start -> the first proposal any primary
  made (even one it then withheld);
- ``safety_violation``: two honest nodes committed different digests;
- the views the honest nodes went through, the evidence they reported that is a penalty
  without a proof, how many committee members were faulty, and whether a decision came from a
  committee with more than f of them (``beyond_f``: not a clean commit).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from mlts_ray.consensus.instance import Instance
from mlts_ray.mlts.consensus_round import Outcome, quorum_commit
from mlts_ray.population.registry import HONEST, REGISTRY


def consensus_honest(behaviour: str) -> bool:
    """Honest on the consensus path: no wrapper changes what the node sends (a trading or
    auditing behaviour leaves consensus honest)."""
    return not REGISTRY[behaviour].consensus_faulty


@dataclass(frozen=True, slots=True)
class Judged:
    """One instance's metrics from the honest nodes' point of view."""

    view: int  # the deciding view, or the last view an honest node tried
    views: int
    safety_violation: bool
    latency_us: int | None
    finality_us: int | None
    proposed_us: int | None
    evidence: int  # penalised votes and proven offenders
    faulty_members: int  # committee members with any behaviour but honest
    beyond_f: bool  # decided while more than f members were faulty
    answered: bool  # the client (if honest) had its f+1 replies
    gave_up: bool  # an honest node ran out of view changes


def honest_nodes(inst: Instance, labels: Mapping[str, str],
                 absent: Collection[str] = ()) -> set[int]:
    """The instance's nodes that followed the protocol: consensus-honest and online (an
    offline node sends nothing, as a crashed one)."""
    return {i for i, n in enumerate(inst.names)
            if consensus_honest(labels.get(n, HONEST)) and n not in absent}


def judge(out: Outcome, labels: Mapping[str, str], absent: Collection[str] = ()) -> Judged:
    """``out`` judged with the nodes' true behaviours (``labels``) and who was offline."""
    inst, trace = out.inst, out.trace
    honest = honest_nodes(inst, labels, absent)
    commits = {i: c for i, c in trace.commits.items() if i in honest}
    safety_violation = len({digest for _, digest in commits.values()}) > 1
    seen = max((v for i, v in trace.views.items() if i in honest), default=0)
    view = out.view if out.decided else seen
    latency = finality = None
    if out.decided:  # every time counts from the instance's start, t = 0
        latency = quorum_commit(inst, commits)  # the honest members' q-th
        if honest <= commits.keys() and not safety_violation:
            finality = max(t for t, _ in commits.values())
    views = max(view, seen) + 1
    faulty = sum(1 for m in inst.member_names if labels.get(m, HONEST) != HONEST)
    return Judged(
        view, views, safety_violation, latency, finality, trace.proposed_us,
        len(penalised_votes(out, honest, views)) + len(out.proven), faulty,
        out.decided and faulty > inst.f,
        bool(trace.answered & honest), bool(trace.gave_up & honest),
    )


def penalised_votes(out: Outcome, honest: set[int], views: int) -> set[tuple[str, str, int]]:
    """``(offender, phase, view)`` of bad signatures, consensus traffic from non-members and
    conflicting votes that honest nodes reported -- except conflicting votes in a view whose
    primary equivocated: honest members were fooled, not faulty."""
    inst = out.inst
    fooled = {v for v in range(views) if inst.names[inst.primary(v)] in out.proven}
    return {
        (e.offender, e.phase, e.view) for i, e in out.trace.reports if i in honest
        and (e.kind in ("bad-signature", "non-member")
             or (e.kind == "conflicting-vote" and e.view not in fooled))
    }
