"""mlts_ray: a simulator of MLTS, a multi-chain blockchain for energy trading between VPPs."""

from mlts_ray.errors import MltsError

__version__ = "0.1.0"
__all__ = ["MltsError", "__version__"]
