"""Runtimes: local (in-process) and Ray, the round loop they share, the run directory (Arrow ->
Parquet, digests, lock, resume), sweeps, the resource estimate and the benchmarks. The only
layer that may read the wall clock (``wall_*`` columns) or import ``ray``."""
