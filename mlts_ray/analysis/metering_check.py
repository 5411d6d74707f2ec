"""Energy in ``mlts verify``: the side chains' signed meter reports, and the ``energy`` and
``market`` tables that restate them (docs/architecture.md section 4).

:func:`meter_reports` reads every period's report from the round records the side chains'
blocks carry: signed by the chain's VMC, about its own chain and round, one entry per trader
in the layout's order. A chain's last periods, whose record rides in a block not made yet, are
taken from the ``energy`` table instead (bound by the digest chain, not by a signature) and
counted as such. Settlement's replay (``derived``) mints each surplus before the period's
blocks and closes each node with the grid after them, and fails where a report's grid import
or export is not what the position less the settled trades leaves. :func:`check_energy`
then holds every ``energy`` row to the physical balance, the report and the replayed trades,
and every ``market`` row to the trades and energy rows it summarises.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial

import pandas as pd

from mlts_ray.analysis.certificates import records_of
from mlts_ray.analysis.run_files import VerifyError
from mlts_ray.config import Config
from mlts_ray.errors import MltsError
from mlts_ray.ledger.block import Block, BlockKind
from mlts_ray.ledger.crypto import DerivedKeyRing
from mlts_ray.names import MAIN
from mlts_ray.mlts.energy import draw_resources
from mlts_ray.mlts.metering import Metered, MeterReport, cross_wh_by_vpp
from mlts_ray.mlts.topology import vpp_layout
from mlts_ray.results.rows import market_figures

Reports = dict[tuple[str, int], dict[str, Metered]]


@dataclass(slots=True)
class Metering:
    reports: Reports = field(default_factory=dict)  # (chain, round) -> node -> entry

    def offline(self, chain: str, rnd: int) -> frozenset[str]:
        """Who was offline in the period (nobody, on the main chain)."""
        return frozenset(n for n, m in self.reports.get((chain, rnd), {}).items()
                         if not m.online)
    signed: int = 0  # periods whose report is on the chain
    unsigned: int = 0  # periods at a chain's end taken from the energy table


def meter_reports(cfg: Config, rounds: int, blocks: dict[tuple[str, int], Block],
                  energy: pd.DataFrame, keys: DerivedKeyRing) -> Metering:
    out = Metering()
    layouts = {lay.chain: lay for lay in map(partial(vpp_layout, cfg.topology), range(cfg.topology.vpps))}
    for (chain, _), block in sorted(blocks.items()):
        if chain == MAIN or block.header.kind == BlockKind.COLLABORATIVE:
            continue
        for record in records_of(block):
            subject = f"block {block.ref} meter report of round {record.round}"
            if not record.metering:
                raise VerifyError(subject, "is missing: every period is metered")
            try:
                rep = MeterReport.decode(record.metering)
            except MltsError as err:
                raise VerifyError(subject, f"does not decode: {err.why}") from None
            layout = layouts[chain]
            if (rep.chain, rep.round, rep.vmc) != (chain, record.round, layout.vmc):
                raise VerifyError(subject, f"is {rep.vmc}'s for {rep.chain} round {rep.round}")
            if not rep.valid(keys):
                raise VerifyError(subject, f"bad signature of {rep.vmc}")
            if tuple(m.node for m in rep.entries) != layout.traders:
                raise VerifyError(subject, "does not meter exactly the VPP's traders")
            out.reports[(chain, record.round)] = rep.by_node()
            out.signed += 1
    rows = energy[["round", "chain", "node", "net_wh", "import_wh", "export_wh", "online"]]
    for (rnd, chain), group in rows.groupby(["round", "chain"], sort=True):
        if (chain, int(rnd)) not in out.reports:
            out.reports[(chain, int(rnd))] = {
                r.node: Metered(r.node, int(r.net_wh), int(r.import_wh), int(r.export_wh),
                                bool(r.online))
                for r in group.itertuples(index=False)}
            out.unsigned += 1
    for chain in layouts:
        for rnd in range(rounds):
            if (chain, rnd) not in out.reports:
                raise VerifyError(f"energy round {rnd}", f"no metering of {chain}, on the "
                                  "chain or in the table")
    return out


def check_energy(cfg: Config, rounds: int, metering: Metering, tables: dict[str, pd.DataFrame],
                 traded: dict[int, dict[str, tuple[int, int]]]) -> None:
    """``traded``: per round, the Wh each node sold and bought in the replayed settlement."""
    energy = tables["energy"]
    capacity = {}
    metered = defaultdict(int)  # round -> nodes metered
    for (_, rr), entries in metering.reports.items():
        metered[rr] += len(entries)
    for rnd, group in energy.groupby("round", sort=True):
        rnd = int(rnd)
        for k, r in enumerate(group.itertuples(index=False)):
            where = f"energy round {rnd} row {k}"
            if r.node not in capacity:
                capacity[r.node] = draw_resources(cfg.energy, cfg.experiment.seed,
                                                  r.node).battery_kwh * 1000
            net = r.generation_wh - r.consumption_wh - r.charge_wh + r.discharge_wh
            if net != r.net_wh:
                raise VerifyError(where, f"net_wh {r.net_wh} but generation less consumption "
                                  f"and storage is {net}")
            if not -1e-6 <= r.soc_wh <= capacity[r.node] + 1e-6:
                raise VerifyError(where, f"soc_wh {r.soc_wh} outside the battery's "
                                  f"[0, {capacity[r.node]}]")
            entry = metering.reports.get((r.chain, rnd), {}).get(r.node)
            if entry is None or (entry.net_wh, entry.import_wh, entry.export_wh, entry.online) \
                    != (r.net_wh, r.import_wh, r.export_wh, bool(r.online)):
                raise VerifyError(where, f"{r.node} nets {r.net_wh}, imports {r.import_wh}, "
                                  f"exports {r.export_wh} Wh, online {r.online}, but its meter "
                                  "report says " + ("nothing" if entry is None else
                                  f"{entry.net_wh}, {entry.import_wh}, {entry.export_wh}, "
                                  f"{entry.online}"))
            sold, bought = traded.get(rnd, {}).get(r.node, (0, 0))
            if (r.sold_wh, r.bought_wh) != (sold, bought):
                raise VerifyError(where, f"{r.node} sold {r.sold_wh} and bought {r.bought_wh} "
                                  f"Wh but its settled trades give {sold} and {bought}")
        if len(group) != metered[rnd]:
            raise VerifyError(f"energy round {rnd}",
                              f"{len(group)} rows for {metered[rnd]} metered nodes")
    _check_market(cfg, rounds, tables)


def _check_market(cfg: Config, rounds: int, tables: dict[str, pd.DataFrame]) -> None:
    columns = ["chain", "market", "trades", "volume_wh", "price_mean", "price_min", "price_max",
               "intra_wh", "cross_wh", "grid_import_wh", "grid_export_wh"]
    by_round = {name: dict(iter(tables[name].groupby("round"))) for name in ("trades", "energy")}
    market = dict(iter(tables["market"].groupby("round")))
    empty = pd.DataFrame()
    for rnd in range(rounds):
        want = expected_market(cfg.workload.market, *(
            by_round[name].get(rnd, empty).to_dict("records") for name in by_round))
        got = market.get(rnd, empty)
        if len(got) != len(want):
            raise VerifyError(f"market round {rnd}", f"{len(got)} rows but the trades and "
                              f"energy rows give {len(want)}")
        for k, (g, w) in enumerate(zip(got[columns].to_dict("records"), want)):
            for c in columns:
                a, b = g[c], w[c]
                if not ((pd.isna(a) and b is None) or (b is not None and a == b)):
                    raise VerifyError(f"market round {rnd} row {k}", f"{c} = {a!r} but the "
                                      f"trades and energy rows give {b!r}")


def expected_market(market: str, trades: list[dict], energy: list[dict]) -> list[dict]:
    """A round's market rows as its trades and energy rows give them: each VPP's market (in
    the order its energy rows come), then the cross-VPP book's."""
    settled = [t for t in trades if t["status"] == "settled"]
    own: dict[str, list[tuple[int, int]]] = defaultdict(list)  # (wh, price) per chain
    for t in settled:
        own[t["chain"]].append((t["wh"], t["price"]))
    across = cross_wh_by_vpp((t["buyer_vpp"], t["seller_vpp"], t["wh"])
                             for t in settled if t["cross"])
    meters: dict[str, list[dict]] = defaultdict(list)
    for e in energy:
        meters[e["chain"]].append(e)
    rows = []
    for chain, mine in meters.items():
        intra = own.get(chain, [])
        rows.append(market_figures(market, chain, intra, sum(wh for wh, _ in intra),
                                   across.get(chain, 0), sum(e["import_wh"] for e in mine),
                                   sum(e["export_wh"] for e in mine)))
    cross = own.get(MAIN, [])
    rows.append(market_figures(market, MAIN, cross, 0, sum(wh for wh, _ in cross), 0, 0))
    return rows
