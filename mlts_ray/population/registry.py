"""The one registry of behaviours (docs/architecture.md section 5). A behaviour is one
registered entry: its name, the strategy it gives each role (``mlts.strategies.Strategies``:
consensus wrapper, trader, auditor; a node's liveness is what its wrapper sends) and where
the population draws it from. The config's accepted names (``faults.behaviours``), the
oracle's honest set and the safety campaign's faulty mixes all follow from it.

A wrapper whose faulty nodes act together (``equivocate``'s coalition) says so itself
(``colludes = True``): every node with that wrapper gets the others as its colluders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mlts_ray.consensus.audit import AbstainingAuditor, FalseAuditor
from mlts_ray.consensus.byzantine import (
    Censor,
    Crash,
    Delay,
    Equivocate,
    Forge,
    Silent,
    SlowPrimary,
    Withhold,
    WithholdHalf,
)
from mlts_ray.mlts import traders
from mlts_ray.mlts.strategies import HONEST as HONEST_STRATEGIES
from mlts_ray.mlts.strategies import Strategies

HONEST = "honest"


@dataclass(frozen=True, slots=True)
class Behaviour:
    name: str
    strategies: Strategies
    # whom the population draws it from: a VPP's traders, or its supervisors (an auditor's
    # behaviour; on the main chain, the grid's)
    drawn_from: Literal["traders", "supervisors"] = "traders"

    @property
    def consensus_faulty(self) -> bool:
        """Whether it changes what the node sends in consensus."""
        return self.strategies.consensus is not None


REGISTRY: dict[str, Behaviour] = {}


def register(behaviour: Behaviour) -> Behaviour:
    if behaviour.name in REGISTRY:
        raise ValueError(f"behaviour {behaviour.name!r} is registered twice")
    REGISTRY[behaviour.name] = behaviour
    return behaviour


_mute, _abstain = traders.Mute(), AbstainingAuditor()  # a faulty consensus node audits nobody
register(Behaviour(HONEST, HONEST_STRATEGIES))
register(Behaviour("crash", Strategies(Crash, _mute, _abstain)))
register(Behaviour("silent", Strategies(Silent, _mute, _abstain)))
register(Behaviour("equivocate", Strategies(Equivocate, auditor=_abstain)))
register(Behaviour("forge", Strategies(Forge, traders.Forge(), _abstain)))
register(Behaviour("delay", Strategies(Delay, auditor=_abstain)))
register(Behaviour("withhold", Strategies(Withhold, auditor=_abstain)))
register(Behaviour("withhold-half", Strategies(WithholdHalf, auditor=_abstain)))
register(Behaviour("censor", Strategies(Censor, auditor=_abstain)))
register(Behaviour("slow-primary", Strategies(SlowPrimary, auditor=_abstain)))
register(Behaviour("abandon", Strategies(trader=traders.Abandon())))
register(Behaviour("false-audit", Strategies(auditor=FalseAuditor()), drawn_from="supervisors"))
register(Behaviour("double-spend", Strategies(trader=traders.DoubleSpend())))
register(Behaviour("replay", Strategies(trader=traders.Replay())))


def names() -> tuple[str, ...]:
    """Every behaviour a config may name (all but ``honest``), in registry order."""
    return tuple(n for n in REGISTRY if n != HONEST)


def consensus_faulty() -> tuple[str, ...]:
    """The behaviours with a consensus wrapper, in registry order (the safety campaign's)."""
    return tuple(n for n, b in REGISTRY.items() if b.consensus_faulty)


def strategies_of(behaviour: str) -> Strategies:
    return REGISTRY[behaviour].strategies


def wrappers(labels: dict[str, str]) -> dict[str, type]:
    """Node -> consensus wrapper of the consensus-faulty nodes of ``labels``."""
    return {n: REGISTRY[b].strategies.consensus for n, b in labels.items()
            if REGISTRY[b].consensus_faulty}
