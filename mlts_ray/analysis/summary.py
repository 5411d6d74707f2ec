"""The per-chain summary of a run's consensus rows: the CLI's closing table and the report's."""

from __future__ import annotations

import pandas as pd


def consensus_summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per chain (and algorithm) of a ``consensus`` table. Every mean says over how
    many rounds it is taken: ``lat_n`` rounds have a latency, ``censored`` committed rounds
    have none (fewer than q honest members committed, so the q-th commit never happened) and
    ``fin_n`` rounds reached every honest node -- a mean over fewer rounds than committed is
    not silently the mean of all."""
    if df.empty:
        return df
    df = df.assign(censored=df.committed & df.latency_ms.isna())
    return (
        df.groupby(["chain", "algorithm"], sort=True)
        .agg(
            rounds=("round", "count"),
            committed=("committed", "sum"),
            k=("committee_size", "max"),
            latency_ms=("latency_ms", "mean"),
            lat_n=("latency_ms", "count"),
            censored=("censored", "sum"),
            finality_ms=("finality_ms", "mean"),
            fin_n=("finality_ms", "count"),
            msgs=("messages", "mean"),
            view_chg=("views", lambda v: int((v - 1).sum())),
            unsafe=("safety_violation", "sum"),
            txs=("txs", "sum"),
        )
        .reset_index()
    )
