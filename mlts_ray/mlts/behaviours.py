"""The one registry of behaviours: what each does in each role (docs/architecture.md section 5).

A behaviour is a strategy per role -- a consensus wrapper (``consensus.byzantine``), a trading
strategy (``mlts.traders``) and an auditing strategy (``consensus.audit``); a node's liveness
is what its wrapper sends, which the chain records (``consensus.conduct``). Code that acts *for* a node looks its strategies up here; code that
judges a node (checks, settlement, credit, verify) never does. The one other reader is the
metrics collector (``byzantine_in_committee``, the ``behaviour`` column).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from mlts_ray.config import Behaviour
from mlts_ray.consensus.audit import AUDITORS, Auditor
from mlts_ray.consensus.byzantine import WRAPPERS
from mlts_ray.mlts.traders import TRADERS, Trader

HONEST = "honest"


@dataclass(frozen=True, slots=True)
class Strategies:
    consensus: type | None  # the wrapper around the honest state machine; None: honest
    trader: Trader
    auditor: Auditor


def _strategies(name: str) -> Strategies:
    return Strategies(WRAPPERS.get(name), TRADERS.get(name, TRADERS[HONEST]),
                      AUDITORS.get(name, AUDITORS[HONEST]))


#: Every behaviour a config may name, and ``honest``.
BEHAVIOURS: dict[str, Strategies] = {name: _strategies(name)
                                     for name in (HONEST, *get_args(Behaviour))}


def strategies(behaviour: str) -> Strategies:
    return BEHAVIOURS[behaviour]
