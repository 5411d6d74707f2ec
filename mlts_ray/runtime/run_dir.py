"""Reading a run directory back: its manifest and its Parquet tables (no pickle anywhere).
Here, under ``runtime``, because the runtime reads what it wrote (a sweep resumes from its
points' manifests) and ``analysis`` builds on it -- never the other way round."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds

from mlts_ray.errors import RunError
from mlts_ray.runtime.digests import table_file
from mlts_ray.runtime.manifest import read_manifest
from mlts_ray.runtime.storage import locate
from mlts_ray.results.schemas import SCHEMAS


def load_table(run_dir: str | Path, table: str) -> pd.DataFrame:
    """One table of a run, every finished round, as a DataFrame with the table's schema."""
    if table not in SCHEMAS:
        raise RunError(table, f"no such table; tables are {', '.join(SCHEMAS)}")
    where = locate(run_dir) / table
    # Exactly the finished rounds' files, by their one name: a round cut short (a crash
    # mid-write) may have some tables' files, and a copy or a stray file is none of the run's.
    done = int(read_manifest(run_dir).get("rounds_done") or 0)
    files = [(where / table_file(r)).path for r in range(done)]
    if not files:
        return SCHEMAS[table].empty_table().to_pandas()
    try:
        data = ds.dataset(files, schema=SCHEMAS[table], format="parquet", filesystem=where.fs)
        return data.to_table().to_pandas()
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise RunError(str(where), f"unreadable table: {err}") from None
