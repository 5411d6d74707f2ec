"""Reading stored runs: tables as pandas, and checking them (``verify``, ``query``)."""

from mlts_ray.analysis.load import load_table, read_manifest

__all__ = ["load_table", "read_manifest"]
