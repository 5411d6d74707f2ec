"""The per-chain summary of a run's consensus rows: the CLI's closing table and the report's."""

from __future__ import annotations

import pandas as pd


def consensus_summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per chain (and algorithm) of a ``consensus`` table. Every mean says over how
    many rounds it is taken: ``lat_n`` rounds have a latency; ``censored`` rounds have none
    (not committed, or fewer than q honest members committed) and are left out of the mean,
    which is therefore a mean of the better rounds; ``fin_n`` rounds reached every honest node.
    ``committed`` counts clean commits only: a round decided by a committee with more than f
    faulty members is ``beyond_f``. ``k`` and ``f`` are the committee's (at most), ``views``
    the mean views a round took."""
    if df.empty:
        return df
    df = df.assign(clean=df.committed & ~df.committed_beyond_f)
    out = (
        df.groupby(["chain", "algorithm"], sort=True)
        .agg(
            rounds=("round", "count"),
            committed=("clean", "sum"),
            beyond_f=("committed_beyond_f", "sum"),
            k=("committee_size", "max"),
            f=("f", "max"),
            latency_ms=("latency_ms", "mean"),
            lat_n=("latency_ms", "count"),
            finality_ms=("finality_ms", "mean"),
            fin_n=("finality_ms", "count"),
            msgs=("messages", "mean"),
            views=("views", "mean"),
            unsafe=("safety_violation", "sum"),
            txs=("txs", "sum"),
        )
        .reset_index()
    )
    out.insert(out.columns.get_loc("lat_n") + 1, "censored", out.rounds - out.lat_n)
    return out
