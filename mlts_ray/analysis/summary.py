"""The per-chain summary of a run's consensus rows: the CLI's closing table and the report's."""

from __future__ import annotations

import pandas as pd


def consensus_summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per chain (and algorithm) of a ``consensus`` table."""
    if df.empty:
        return df
    return (
        df.groupby(["chain", "algorithm"], sort=True)
        .agg(
            rounds=("round", "count"),
            committed=("committed", "sum"),
            k=("committee_size", "max"),
            latency_ms=("latency_ms", "mean"),
            finality_ms=("finality_ms", "mean"),
            msgs=("messages", "mean"),
            view_chg=("views", lambda v: int((v - 1).sum())),
            unsafe=("safety_violation", "sum"),
            txs=("txs", "sum"),
        )
        .reset_index()
    )
