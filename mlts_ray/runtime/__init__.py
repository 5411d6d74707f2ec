"""Runtimes: the local (in-process) runtime, the result sink (Arrow -> Parquet) and, next, Ray.
The only layer that may read the wall clock (``wall_*`` columns) or import ``ray``."""
