"""The whole MLTS simulation round by round, independent of any runtime (docs/architecture.md section 4).

One round is one trading period: every VPP's meters are read and each surplus enters its
node's account; the traders post signed orders for their positions, matched inside the VPP
first; the VMCs forward open orders to the cross-VPP book; side chains run consensus on their
intra-VPP trades (independent of each other: a runtime may run them in parallel); the main
chain runs consensus on the cross-VPP trades with the anchor root of the previous round's
collaborative blocks; each VPP party to a committed main block gets a collaborative block;
cross trades settle; the grid closes every node's period at its tariffs; every chain updates
its credit. Every round the physical balance (each node's metered position is what it sold
less what it bought plus its grid export less its import) and money (the grid's account
included) are checked, and every energy account is empty again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import tomli_w

from mlts_ray.config import PLACEMENT_KEYS, Config
from mlts_ray.errors import RunError
from mlts_ray.ledger.chain_accounts import Ledgers
from mlts_ray.ledger.crypto import Identity, KeyRing
from mlts_ray.ledger.merkle import verify_proof
from mlts_ray.ledger.settlement import GRID, Settlement
from mlts_ray.ledger.tx import MAIN_CHAIN, Order, SignedTrade, Trade
from mlts_ray.mlts.anchoring import Anchor, anchor_of, anchor_proofs, anchor_root
from mlts_ray.mlts.chain import Chain, RoundRows
from mlts_ray.mlts.consensus_round import Outcome, Runner, local_runner
from mlts_ray.mlts.main_chain import MainChain, grid_names
from mlts_ray.mlts.energy import Calendar
from mlts_ray.mlts.market import market_rows
from mlts_ray.mlts.metering import tally
from mlts_ray.mlts.side import SideChain
from mlts_ray.mlts.behaviours import strategies
from mlts_ray.mlts.traders import contract
from mlts_ray.mlts.topology import vpp_layout
from mlts_ray.mlts.workload import MARKETS

Clock = Callable[[], float]


def run_id_of(cfg: Config) -> str:
    """Deterministic: the same config (seed included) has the same run id on every runtime."""
    data = cfg.model_dump(mode="json")
    for key in PLACEMENT_KEYS:
        data["experiment"].pop(key)
    digest = hashlib.sha256(tomli_w.dumps(data).encode()).hexdigest()[:10]
    return f"{cfg.experiment.name}-{digest}"


class Simulation:
    """``runner`` runs consensus instances (default: in this process, timed by ``clock``)."""

    def __init__(
        self, cfg: Config, runner: Runner | None = None, clock: Clock | None = None
    ) -> None:
        self.cfg = cfg
        seed = cfg.experiment.seed
        self.identities = {n: Identity.derive(seed, n) for n in node_names(cfg)}
        self.keys = KeyRing.of(self.identities.values())
        # split by chain: what crosses chains settles by two-phase steps (ledger.chain_accounts)
        self.ledger = Ledgers(self.keys, opening_balances(cfg))
        self.totals = self.ledger.totals()
        self.sides = {
            c.chain: c for c in (SideChain(cfg, v, self.identities, self.keys)
                                 for v in range(cfg.topology.vpps))
        }
        self.main = MainChain(cfg, self.identities, self.keys, self.sides)
        self.pending: list[Anchor] = []  # collaborative blocks the next main block anchors
        self.runner = runner or local_runner(cfg, self.identities, self.keys, clock)
        self.calendar = Calendar.of(cfg)

    @property
    def chains(self) -> list[Chain]:
        """Every chain: the side chains in VPP order, then the main chain."""
        return [*self.sides.values(), self.main]

    def run_round(self, rnd: int) -> dict[str, list[dict[str, Any]]]:
        """Every chain's round, then the checks every round must pass."""
        rows = RoundRows()
        self.ledger.forget_before(rnd)  # no trade of an earlier round can settle from now on
        for chain in self.chains:
            chain.begin(rnd)
        for side in self.sides.values():
            side.open_period(self.ledger)
        # Each side chain's trading and consensus depend on its own VPP only: the runner may run
        # them in parallel, wherever it runs the chain.
        jobs = [side.job(rnd, [], trading=side.trading_spec(rnd, self.ledger))
                for side in self.sides.values()]
        forwarded: list[Order] = []
        for side, out in zip(self.sides.values(), self.runner(jobs), strict=True):
            side.apply_trading(out.trading)
            forwarded += out.trading.forwarded
            side.record(out, out.trading.trades, self.ledger, rows)
        cross = self._cross_trades(rnd, forwarded)
        (out,) = self.runner([self.main.job(rnd, cross, anchor_root(self.pending))])
        self.main.record(out, cross, self.ledger, rows)
        if out.block is not None:
            self._anchor_and_record(rnd, out, rows)
        traded = tally((t["seller"], t["buyer"], t["wh"]) for t in rows.trades
                       if t["status"] == "settled")
        for side in self.sides.values():
            side.close_period(rnd, self.ledger, traded, rows)
        self._check_balance(rnd, rows.energy)
        rows.market.extend(market_rows(self.cfg, rows))
        for chain in self.chains:
            chain.credit(rnd, self.ledger, rows)
        self._check_conservation(rnd)
        tables = {name: getattr(rows, name) for name in RoundRows.__slots__}
        start = self.calendar.period_start(rnd)
        for row in (*tables["consensus"], *tables["trades"], *tables["energy"],
                    *tables["market"]):
            row["period_start"] = start
        tables["balances"] = [
            {"node": n, "money": m, "energy_wh": e, "energy_kwh": e / 1000}
            for n, (m, e) in sorted(self.ledger.balances().items())
        ]
        return tables

    def _cross_trades(self, rnd: int, forwarded: list[Order]) -> list[SignedTrade]:
        """Match the forwarded orders across VPPs; each party's VPP has its say on signing."""
        out = []
        for f in MARKETS[self.cfg.workload.market](forwarded)[0]:
            if f.buy.vpp == f.sell.vpp:  # cannot happen: a VPP's open orders never cross
                continue
            trade = Trade(MAIN_CHAIN, rnd, f.buy.node, f.sell.node, f.buy.vpp, f.sell.vpp,
                          f.wh, f.price, f.buy.order_id, f.sell.order_id)
            parties = [(self.identities[n], strategies(self._behaviour_of(n)).trader)
                       for n in (trade.buyer, trade.seller)]  # each signs by its own strategy
            signed, walked = contract(trade, *parties)
            if signed is None:
                self._side_of(walked).complain(walked, "abandoned", trade.encode(), rnd)
            else:
                out.append(signed)
        return out

    def _side_of(self, node: str) -> SideChain:
        return self.sides[node.partition("/")[0]]

    def _behaviour_of(self, node: str) -> str:
        return self._side_of(node).behaviour[node]

    def _anchor_and_record(self, rnd: int, out: Outcome, rows: RoundRows) -> None:
        """The committed main block anchors the pending collaborative blocks; then each VPP
        party to its trades gets a new collaborative block, pending until the next main block."""
        header = out.block.header
        # pending is in VPP order, one block per VPP: the root's order (anchoring.ordered)
        for a, proof in anchor_proofs(self.pending):
            rows.anchors.append({
                "main_height": header.height, "chain": a.chain, "collab_height": a.height,
                "collab_hash": a.block_hash.hex(), "collab_type": a.main_type,
                "ok": verify_proof(a.leaf, proof, header.anchor_root),
            })
        self.pending = []
        by_vpp: dict[str, list[SignedTrade]] = {}
        for t in out.block.signed_trades():
            for vpp in dict.fromkeys((t.trade.buyer_vpp, t.trade.seller_vpp)):
                by_vpp.setdefault(vpp, []).append(t)
        for vpp in sorted(by_vpp, key=lambda c: int(c.split("-")[1])):
            block = self.sides[vpp].collaborative(rnd, header.height, by_vpp[vpp], rows)
            self.pending.append(anchor_of(block))

    def _check_balance(self, rnd: int, energy: list[dict[str, Any]]) -> None:
        """Each node's metered position went somewhere: to buyers, or to the grid."""
        for row in energy:
            net = row["generation_wh"] - row["consumption_wh"] - row["charge_wh"] \
                + row["discharge_wh"]
            moved = row["sold_wh"] - row["bought_wh"] + row["export_wh"] - row["import_wh"]
            if net != row["net_wh"] or net != moved:
                raise RunError(f"round {rnd} node {row['node']}",
                               f"physical balance broken: metered {net} Wh, but it sold, bought "
                               f"and exchanged with the grid {moved} Wh net")

    def _check_conservation(self, rnd: int) -> None:
        # Money moves between accounts only (the grid's included); energy lives one period:
        # every account is empty when the period closes.
        if self.ledger.totals() != self.totals:
            raise RunError(
                f"round {rnd}",
                f"money/energy not conserved: totals {self.ledger.totals()} != {self.totals}",
            )




def node_names(cfg: Config) -> list[str]:
    """Every node with an account: the VPPs' nodes in VPP order, then the grid nodes."""
    return [*(n for v in range(cfg.topology.vpps) for n in vpp_layout(cfg, v).nodes),
            *grid_names(cfg)]


def opening_balances(cfg: Config) -> dict[str, tuple[int, int]]:
    """Before round 0: every node's starting money, no energy, and the grid's account at zero."""
    money = cfg.workload.initial_money_cents
    return {**{n: (money, 0) for n in node_names(cfg)}, GRID: (0, 0)}


def opening_ledger(cfg: Config, keys: KeyRing) -> Settlement:
    """The opening balances as one undivided ledger: what ``mlts verify`` replays the run's
    settlement on, independently of the run's shards."""
    return Settlement(keys, opening_balances(cfg))
