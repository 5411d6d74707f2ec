"""Reading stored runs: tables as pandas, and checking them (``verify``, ``query``)."""

from mlts_ray.analysis.load import load_run, load_sweep, load_table, read_manifest

__all__ = ["load_run", "load_sweep", "load_table", "read_manifest"]
