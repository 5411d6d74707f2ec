"""Committee and primary selection for each algorithm (docs/architecture.md section 5), as pure functions.

- ``pbft``: every node is a replica. ``vmc`` and ``stable`` primaries (Castro-Liskov): views
  continue across rounds, so the primary of a round is the one the last view change left,
  counted from the chain's best-connected node (``lead``: a side chain's VMC, the client that
  holds every trade first) for ``vmc``, from the first node by name for ``stable``; ``rotate``:
  the primary moves round-robin with the round, faulty or not.
- ``dce-pbft``: the top-k eligible nodes by credit, ties broken by ``sha256(seed, round, node)``;
  the primary of view v is the committee sorted the same way at position ``v mod k`` --
  shifted by the round (``dce_primary = "rotate"``, the default) so that every member leads in
  turn, or not (``"credit"``: the highest credit always leads first); ``"vmc"``: as ``rotate``,
  but the chain's best-connected node (``lead``) leads first whenever it is seated. Too few
  eligible nodes: fill with the best remaining and mark the round ``committee_degraded``; with
  no usable node at all (every one suspended or banned), seat the best by credit regardless.
- ``random-committee``: the same k, drawn uniformly at random each round, no credit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from mlts_ray.net.rng import stream, tie_break


@dataclass(frozen=True, slots=True)
class Committee:
    members: tuple[str, ...]  # in primary order
    degraded: bool = False


def rank(nodes: Sequence[str], credit: Mapping[str, float], seed: int, round_: int) -> list[str]:
    """Highest credit first; equal credit ordered by the seeded hash tie-break."""
    return sorted(nodes, key=lambda n: (-credit[n], tie_break(seed, round_, n)))


def pbft_committee(
    nodes: Sequence[str], round_: int, view: int = 0, pbft_primary: str = "vmc",
    lead: str | None = None, **_: object,
) -> Committee:
    """``view``: the chain's view when the round starts (every view change of earlier rounds);
    ``lead``: who leads view 0 under ``vmc``."""
    order = _led_by(tuple(nodes), lead if pbft_primary == "vmc" else None)
    shift = (round_ if pbft_primary == "rotate" else view) % len(order)
    return Committee(order[shift:] + order[:shift])


def _led_by(order: tuple[str, ...], lead: str | None) -> tuple[str, ...]:
    """``order`` turned round so that ``lead`` (if in it) comes first."""
    if lead is None or lead not in order:
        return order
    i = order.index(lead)
    return order[i:] + order[:i]


def dce_committee(
    candidates: Sequence[str], k: int, credit: Mapping[str, float],
    eligible: Callable[[str], bool], usable: Callable[[str], bool], seed: int, round_: int,
    dce_primary: str = "credit", lead: str | None = None, **_: object,
) -> Committee:
    ranked = rank([n for n in candidates if usable(n)], credit, seed, round_)
    chosen = [n for n in ranked if eligible(n)][:k]
    degraded = len(chosen) < k
    if degraded:
        chosen += [n for n in ranked if n not in chosen][: k - len(chosen)]
    if not chosen:
        # Every candidate suspended or banned: a chain with no committee can make no block
        # again, ever (credit only moves with rounds it takes part in). Seat the best by credit
        # regardless, marked degraded, rather than stop the chain -- the credit model's job
        # is to keep this from happening, not the selection's to make it final.
        chosen = rank(candidates, credit, seed, round_)[:k]
    ordered = tuple(rank(chosen, credit, seed, round_))
    if dce_primary in ("rotate", "vmc"):  # round-robin over the committee, in credit order
        shift = round_ % len(ordered)
        ordered = ordered[shift:] + ordered[:shift]
    if dce_primary == "vmc" and lead in ordered:  # the lead first, the others as they were
        ordered = (lead, *(n for n in ordered if n != lead))
    return Committee(ordered, degraded)


def random_committee(
    candidates: Sequence[str], k: int, seed: int, round_: int, chain: str = "", **_: object,
) -> Committee:
    """No credit at all -- not even its bans: the ablation isolates the smaller committee."""
    chosen = stream(seed, "random-committee", chain, round_).sample(
        list(candidates), min(k, len(candidates))
    )
    return Committee(tuple(chosen), len(chosen) < k)


SELECTORS: dict[str, Callable[..., Committee]] = {
    "pbft": pbft_committee,
    "dce-pbft": dce_committee,
    "random-committee": random_committee,
}
