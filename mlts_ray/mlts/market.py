"""The ``market`` table: one row per chain and period, built from the period's trade and
energy rows (docs/architecture.md section 8).

A side chain's row is its VPP's market: what was matched inside it, what its nodes traded
across VPPs, what the grid took and supplied; the main chain's row is the cross-VPP book. The
price columns are over settled trades: a call auction's single clearing price, or the
continuous auction's volume-weighted mean and range.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from mlts_ray.config import Config
from mlts_ray.ledger.tx import MAIN_CHAIN

Row = dict[str, Any]


def market_rows(cfg: Config, rows) -> list[Row]:
    """``rows``: the round's ``RoundRows`` with its trades and energy filled in."""
    settled = [t for t in rows.trades if t["status"] == "settled"]
    own: dict[str, list[Row]] = defaultdict(list)  # trades on each chain
    across: dict[str, int] = defaultdict(int)  # each VPP's cross-traded Wh, either side
    for t in settled:
        own[t["chain"]].append(t)
        if t["cross"]:
            for vpp in {t["buyer_vpp"], t["seller_vpp"]}:
                across[vpp] += t["wh"]
    grid: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for e in rows.energy:
        grid[e["chain"]][0] += e["import_wh"]
        grid[e["chain"]][1] += e["export_wh"]
    chains = [*dict.fromkeys(e["chain"] for e in rows.energy), MAIN_CHAIN]
    out = []
    for chain in chains:
        trades = own.get(chain, [])
        volume = sum(t["wh"] for t in trades)
        prices = [t["price"] for t in trades]
        side = chain != MAIN_CHAIN
        out.append({
            "chain": chain, "market": cfg.workload.market, "trades": len(trades),
            "volume_wh": volume,
            "price_mean": sum(t["wh"] * t["price"] for t in trades) / volume if volume else None,
            "price_min": min(prices, default=None), "price_max": max(prices, default=None),
            "intra_wh": volume if side else 0, "cross_wh": across.get(chain, 0) if side else volume,
            "grid_import_wh": grid[chain][0] if side else 0,
            "grid_export_wh": grid[chain][1] if side else 0,
        })
    return out
