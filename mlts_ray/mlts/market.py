"""The ``market`` table: one row per chain and period, built from the period's trade and
energy rows (docs/architecture.md section 8).

A side chain's row is its VPP's market: what was matched inside it, what its nodes traded
across VPPs, what the grid took and supplied; the main chain's row is the cross-VPP book. The
price columns are over settled trades: a call auction's single clearing price, or the
continuous auction's volume-weighted mean and range.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from mlts_ray.config import Config
from mlts_ray.ledger.tx import MAIN_CHAIN

Row = dict[str, Any]


def market_rows(cfg: Config, rows) -> list[Row]:
    """``rows``: the round's ``RoundRows`` with its trades and energy filled in -- every
    chain's row at once (what ``mlts verify`` rebuilds the table from)."""
    settled = [t for t in rows.trades if t["status"] == "settled"]
    own: dict[str, list[Row]] = defaultdict(list)  # trades on each chain
    for t in settled:
        own[t["chain"]].append(t)
    across = cross_wh_by_vpp(t for t in settled if t["cross"])
    energy: dict[str, list[Row]] = defaultdict(list)
    for e in rows.energy:
        energy[e["chain"]].append(e)
    return [*(market_row(cfg, chain, own.get(chain, []), across.get(chain, 0), e)
              for chain, e in energy.items()),
            main_market_row(cfg, own.get(MAIN_CHAIN, []))]


def cross_wh_by_vpp(cross: Iterable[Row]) -> dict[str, int]:
    """Each VPP's cross-traded Wh over settled cross trades, as buyer or seller (a trade
    counts once per VPP)."""
    out: dict[str, int] = {}
    for t in cross:
        for vpp in {t["buyer_vpp"], t["seller_vpp"]}:
            out[vpp] = out.get(vpp, 0) + t["wh"]
    return out


def market_row(cfg: Config, chain: str, intra: list[Row], cross_wh: int,
               energy: list[Row]) -> Row:
    """A VPP's row: its settled intra-VPP trades, the Wh its nodes traded across VPPs and its
    nodes' exchange with the grid (its ``energy`` rows)."""
    return {**_prices(cfg, chain, intra), "intra_wh": sum(t["wh"] for t in intra),
            "cross_wh": cross_wh, "grid_import_wh": sum(e["import_wh"] for e in energy),
            "grid_export_wh": sum(e["export_wh"] for e in energy)}


def main_market_row(cfg: Config, cross: list[Row]) -> Row:
    """The cross-VPP book's row: its settled trades."""
    return {**_prices(cfg, MAIN_CHAIN, cross), "intra_wh": 0,
            "cross_wh": sum(t["wh"] for t in cross), "grid_import_wh": 0, "grid_export_wh": 0}


def _prices(cfg: Config, chain: str, trades: list[Row]) -> Row:
    volume = sum(t["wh"] for t in trades)
    prices = [t["price"] for t in trades]
    return {
        "chain": chain, "market": cfg.workload.market, "trades": len(trades),
        "volume_wh": volume,
        "price_mean": sum(t["wh"] * t["price"] for t in trades) / volume if volume else None,
        "price_min": min(prices, default=None), "price_max": max(prices, default=None),
    }
