"""What a node does in each role, as the population hands it out (docs/architecture.md
section 5): the model acts *for* a node through its ``Strategies`` -- the wrapper around its
honest consensus state machine, how it trades, how it audits -- and never learns its name.
Code that judges a node (checks, settlement, credit, ``mlts verify``) never looks at them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from mlts_ray.consensus.audit import Auditor
from mlts_ray.mlts.traders import Trader


@dataclass(frozen=True, slots=True)
class Strategies:
    consensus: type | None = None  # the wrapper around the honest state machine; None: honest
    trader: Trader = Trader()
    auditor: Auditor = Auditor()


HONEST = Strategies()


class Cast(Protocol):
    """Who acts how on each chain: node -> strategies (absent: honest). The population
    (``mlts_ray.population``) is the one implementation; the model only asks."""

    def strategies(self, chain: str) -> Mapping[str, Strategies]: ...
