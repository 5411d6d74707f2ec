"""``mlts verify --replay``: the proof for what no chain check derives. The simulation is
deterministic, so re-running the stored config in this process must give every stored table
again, row for row (``wall_*`` columns aside); the first difference is named by table, round,
row and column. It costs a local run of the same rounds."""

from __future__ import annotations

import pandas as pd

from mlts_ray.analysis.run_files import StoredRun, VerifyError
from mlts_ray.results.schemas import TABLES
from mlts_ray.runtime.rounds import Rounds


def replay(run: StoredRun) -> int:
    """Re-run ``run``'s rounds and compare; returns the rows compared."""
    rounds, compared = Rounds.local(run.cfg), 0
    for rnd in range(run.rounds):
        batches = rounds.batches(rnd)
        for table in TABLES:
            want = batches[table].to_pandas()
            stored = run.tables[table]
            got = stored[stored["round"] == rnd].reset_index(drop=True)
            compared += _compare(table, rnd, got, want)
    return compared


def _compare(table: str, rnd: int, got: pd.DataFrame, want: pd.DataFrame) -> int:
    columns = [c for c in want.columns if not c.startswith("wall_")]
    if len(got) != len(want):
        raise VerifyError(f"{table} round {rnd}", f"{len(got)} rows but re-running the round "
                          f"gives {len(want)}")
    if got[columns].equals(want[columns]):  # the common case, at pandas speed
        return len(want)
    for i in range(len(want)):  # find and name the first difference
        for column in columns:
            a, b = got[column].iat[i], want[column].iat[i]
            if not _same(a, b):
                raise VerifyError(f"{table} round {rnd} row {i}",
                                  f"{column} is {a!r} but re-running the round gives {b!r}")
    return len(want)


def _same(a, b) -> bool:
    """Exactly equal (floats too: the contract is bit-identical tables), nulls equal nulls."""
    if isinstance(a, (bytes, str)) or isinstance(b, (bytes, str)):
        return a == b
    return bool(a == b) or (pd.isna(a) and pd.isna(b))
