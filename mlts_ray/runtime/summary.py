"""A short per-chain summary of a finished run, read back from its Parquet tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlts_ray.analysis.load import load_table


def consensus_summary(run_dir: Path | str) -> pd.DataFrame:
    df = load_table(run_dir, "consensus")
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
