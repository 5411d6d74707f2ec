"""The trading day in a run's report: energy over the day per VPP, where traded energy went
(inside the VPP, across VPPs, the grid) hour by hour, prices against the tariff band, and each
VPP's self-sufficiency -- from the ``energy``, ``market`` and ``trades`` tables."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from mlts_ray.config import Config  # noqa: E402


def _hour(df: pd.DataFrame, tz: str) -> pd.Series:
    return df["period_start"].dt.tz_convert(tz).dt.hour


def day_summary(energy: pd.DataFrame, trades: pd.DataFrame) -> pd.DataFrame:
    """Per VPP: kWh generated, consumed, traded inside, across, with the grid; self-sufficiency
    (the share of consumption not imported from the grid)."""
    settled = trades[trades.status == "settled"]
    rows = []
    for chain, e in energy.groupby("chain", sort=True):
        intra = settled[(settled.chain == chain)].wh.sum()
        cross = settled[settled.cross & ((settled.buyer_vpp == chain)
                                         | (settled.seller_vpp == chain))].wh.sum()
        use = e.consumption_wh.sum()
        rows.append({
            "vpp": chain, "generated_kwh": e.generation_wh.sum() / 1000,
            "consumed_kwh": use / 1000, "intra_kwh": intra / 1000, "cross_kwh": cross / 1000,
            "grid_import_kwh": e.import_wh.sum() / 1000,
            "grid_export_kwh": e.export_wh.sum() / 1000,
            "self_sufficiency": 1 - e.import_wh.sum() / use if use else float("nan"),
        })
    return pd.DataFrame(rows)


def shares_by_hour(energy: pd.DataFrame, trades: pd.DataFrame, tz: str) -> pd.DataFrame:
    """Hour by hour, the kWh sold inside VPPs, across VPPs, and to the grid, and their shares."""
    settled = trades[trades.status == "settled"].assign(hour=lambda d: _hour(d, tz))
    e = energy.assign(hour=lambda d: _hour(d, tz))
    out = pd.DataFrame({
        "intra": settled[~settled.cross].groupby("hour").wh.sum(),
        "cross": settled[settled.cross].groupby("hour").wh.sum(),
        "grid": e.groupby("hour").export_wh.sum(),
    }).fillna(0) / 1000
    total = out.sum(axis=1).where(lambda s: s > 0)
    for c in ("intra", "cross", "grid"):
        out[f"{c}_share"] = out[c] / total
    return out


def day_figures(cfg: Config, energy: pd.DataFrame, trades: pd.DataFrame,
                out: Path) -> dict[str, str]:
    """Writes the day's figures; returns {file name: title}."""
    tz, w = cfg.energy.timezone, cfg.workload
    figures = {}
    e = energy.assign(hour=lambda d: _hour(d, tz) + d.period_start.dt.tz_convert(tz).dt.minute / 60)
    chains = sorted(e.chain.unique())
    fig, axes = plt.subplots(1, len(chains), figsize=(3.2 * len(chains) + 1, 3.4), sharey=True,
                             squeeze=False)
    for ax, chain in zip(axes[0], chains):
        g = e[e.chain == chain].groupby("hour")
        ax.plot(g.generation_wh.sum() / 1000, label="generation")
        ax.plot(g.consumption_wh.sum() / 1000, label="consumption")
        ax.plot(g.sold_wh.sum() / 1000, label="sold to peers")
        ax.plot(g.import_wh.sum() / 1000, label="grid import", linestyle=":")
        ax.set_title(chain)
        ax.set_xlabel("hour (site time)")
    axes[0][0].set_ylabel("kWh per period")
    axes[0][-1].legend(fontsize=7)
    _save(fig, out / "energy_day.png")
    figures["energy_day.png"] = "Generation, consumption and traded energy over the day per VPP"

    shares = shares_by_hour(energy, trades, tz)
    fig, ax = plt.subplots(figsize=(7, 3.4))
    bottom = None
    for c, label in (("intra", "inside the VPP"), ("cross", "across VPPs"), ("grid", "to the grid")):
        ax.bar(shares.index, shares[c], bottom=bottom, label=label)
        bottom = shares[c] if bottom is None else bottom + shares[c]
    ax.set_xlabel("hour (site time)")
    ax.set_ylabel("kWh sold")
    ax.legend(fontsize=8)
    _save(fig, out / "energy_shares.png")
    figures["energy_shares.png"] = "Where sold energy went, hour by hour"

    settled = trades[trades.status == "settled"].assign(hour=lambda d: _hour(d, tz))
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for cross, label in ((False, "inside a VPP"), (True, "across VPPs")):
        s = settled[settled.cross == cross]
        ax.scatter(s.hour + s.period_start.dt.minute / 60, s.price, s=6, alpha=0.5, label=label)
    ax.axhline(w.feed_in_cents, color="grey", linestyle="--", label="feed-in")
    ax.axhline(w.retail_cents, color="black", linestyle="--", label="retail")
    ax.set_xlabel("hour (site time)")
    ax.set_ylabel("cents per kWh")
    ax.legend(fontsize=8)
    _save(fig, out / "energy_prices.png")
    figures["energy_prices.png"] = "Trade prices against the feed-in / retail band"
    return figures


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
