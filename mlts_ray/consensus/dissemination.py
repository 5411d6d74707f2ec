"""How DCE-PBFT's certificate (the block and q signed commits) reaches the N-k observers
(``consensus.dissemination``; docs/architecture.md section 5, "Dissemination").

- ``primary``: the deciding view's primary sends it to every observer (the paper's; one
  residential uplink carries N-k copies of the block);
- ``committee``: every member that commits sends it to its share of the observers (observer
  ``j`` of the list to member ``j mod k``): k uplinks, N-k copies in all;
- ``gossip``: the primary sends it to ``fanout`` observers, and every observer that gets it
  first forwards it to ``fanout`` others, drawn from a seeded stream of its own;
- ``vmc``: the primary sends it to the client (a side chain's VMC, on a data-centre link),
  which sends it to every observer.

Pure functions of the instance: who a node sends the certificate to once it holds it.
"""

from __future__ import annotations

from mlts_ray.consensus.instance import Instance
from mlts_ray.net.rng import stream

MODES = ("primary", "committee", "gossip", "vmc")


def from_member(inst: Instance, index: int, deciding: bool) -> tuple[int, ...]:
    """Whom member ``index`` sends the certificate to once it committed; ``deciding``: it is
    the primary of the deciding view (or of the view it is in now)."""
    mode, observers = inst.dissemination, inst.observers
    if not observers:
        return ()
    if mode == "committee":
        position = inst.members.index(index)
        return observers[position :: inst.k]
    if mode == "vmc":  # through the client: a seated client sends to everyone itself
        if index == inst.client:
            return observers
        return (inst.client,) if deciding and inst.client in observers else ()
    if not deciding:
        return ()
    if mode == "gossip":
        return _draw(inst, index, observers)
    return observers  # primary


def from_observer(inst: Instance, index: int) -> tuple[int, ...]:
    """Whom observer ``index`` forwards the certificate to once it holds it."""
    if inst.dissemination == "gossip":
        return _draw(inst, index, inst.observers)
    if inst.dissemination == "vmc" and index == inst.client:
        return tuple(o for o in inst.observers if o != index)
    return ()


def _draw(inst: Instance, index: int, pool: tuple[int, ...]) -> tuple[int, ...]:
    others = [o for o in pool if o != index]
    rng = stream(inst.seed, "gossip", inst.chain, inst.round, index)
    return tuple(sorted(rng.sample(others, min(inst.fanout, len(others)))))


def depth(observers: int, fanout: int) -> int:
    """Gossip's relay depth: the first d with (1 + fanout)^d >= observers + 1 (each holder
    reaches ``fanout`` new ones a step, in the best case)."""
    d, reached = 0, 1
    while reached < observers + 1:
        reached *= 1 + max(1, fanout)
        d += 1
    return d
