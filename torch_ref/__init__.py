"""PyTorch reference models built from the same specs as the manual engine."""
from torch_ref.build import build, from_numpy, to_numpy, torch_dtype

__all__ = ["build", "from_numpy", "to_numpy", "torch_dtype"]
