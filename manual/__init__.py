"""Backpropagation by hand in NumPy: build(spec) gives a Sequential network with torch's parameter layout."""
import numbers

import numpy as np

from manual import spec
from manual.init import initialize
from manual.network import Sequential, make_layers

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

__all__ = ["spec", "Sequential", "build", "as_dtype"]


def as_dtype(dtype):
    """np.float32 or np.float64 from "float32"/"float64" or a NumPy dtype; else ValueError."""
    try:
        dt = None if dtype is None else np.dtype(dtype)          # np.dtype(None) would be float64
    except TypeError:
        dt = None
    if dt is None or dt not in DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return dt


def build(layers, init="torch_default", seed=0, dtype="float64"):
    """A Sequential for a spec, its params drawn by the init scheme from np.random.default_rng(seed)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    layers = spec.validate(layers)                                 # a generator is read once
    net = Sequential(make_layers(layers, as_dtype(dtype), seed), layers)
    initialize(net.layers, init, seed)
    return net
