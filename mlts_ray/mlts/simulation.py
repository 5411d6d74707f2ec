"""The whole MLTS simulation round by round, independent of any runtime.

A runtime (local, or Ray next) creates one :class:`Simulation` per run and calls
:meth:`Simulation.run_round` for rounds 0, 1, ...; each call returns that round's rows of every
table. The side chains are independent within a round: they touch only their own VPP's
accounts, which is what lets a runtime run them in parallel.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from mlts_ray.config import Config, to_toml
from mlts_ray.errors import RunError
from mlts_ray.ledger.crypto import Identity, KeyRing
from mlts_ray.ledger.settlement import Settlement
from mlts_ray.mlts.side import RoundRows, SideChain
from mlts_ray.mlts.topology import vpp_layout


def run_id_of(cfg: Config) -> str:
    """Deterministic: the same config (seed included) always has the same run id."""
    digest = hashlib.sha256(to_toml(cfg).encode()).hexdigest()[:10]
    return f"{cfg.experiment.name}-{digest}"


class Simulation:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        seed, w = cfg.experiment.seed, cfg.workload
        names = [n for v in range(cfg.topology.vpps) for n in vpp_layout(cfg, v).nodes]
        self.identities = {n: Identity.derive(seed, n) for n in names}
        self.keys = KeyRing.of(self.identities.values())
        self.ledger = Settlement(
            self.keys, {n: (w.initial_money_cents, w.initial_energy_wh) for n in names}
        )
        self.totals = self.ledger.totals()
        self.chains = [SideChain(cfg, v, self.identities, self.keys) for v in range(cfg.topology.vpps)]

    def run_round(
        self, rnd: int, clock: Callable[[], float] | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """Every chain's round, then the checks every round must pass. ``clock`` (seconds), given
        by the runtime, fills the ``wall_ms`` columns; the simulation itself never reads one."""
        rows = RoundRows()
        for chain in self.chains:
            start = clock() if clock else 0.0
            chain_rows = chain.run_round(rnd, self.ledger)
            wall = (clock() - start) * 1000 if clock else None
            for row in chain_rows.consensus:
                row["wall_ms"] = wall
            rows.extend(chain_rows)
        self._check_conservation(rnd)
        tables = {name: getattr(rows, name) for name in RoundRows.__slots__}
        tables["balances"] = [
            {"node": n, "money": m, "energy_wh": e, "energy_kwh": e / 1000}
            for n, (m, e) in sorted(self.ledger.balances().items())
        ]
        return tables

    def _check_conservation(self, rnd: int) -> None:
        # Energy sold equals energy bought exactly when the energy total is unchanged.
        if self.ledger.totals() != self.totals:
            raise RunError(
                f"round {rnd}",
                f"money/energy not conserved: totals {self.ledger.totals()} != {self.totals}",
            )
