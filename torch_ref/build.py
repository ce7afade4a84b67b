"""torch.nn.Sequential models from manual.spec layer specs, and state-dict exchange with NumPy."""
import numpy as np
import torch
from torch import nn

import manual
from manual import spec

DTYPES = {"float32": torch.float32, "float64": torch.float64}
_PARAMETERLESS = {spec.Flatten: nn.Flatten, spec.ReLU: nn.ReLU, spec.Sigmoid: nn.Sigmoid, spec.Tanh: nn.Tanh}


def torch_dtype(dtype):
    """The torch dtype for "float32" / "float64" (or the numpy equivalents); else ValueError."""
    return DTYPES[manual.as_dtype(dtype).name]


def _module(layer, dtype):
    """The torch module for one layer spec, parameters created in dtype."""
    if isinstance(layer, spec.Linear):
        return nn.Linear(layer.in_features, layer.out_features, dtype=dtype)
    if isinstance(layer, spec.Conv2d):
        return nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                         stride=layer.stride, padding=layer.padding, dtype=dtype)
    if isinstance(layer, spec.MaxPool2d):
        return nn.MaxPool2d(layer.kernel_size, stride=layer.stride)
    if isinstance(layer, spec.Dropout):
        return nn.Dropout(layer.p)
    for kind, module in _PARAMETERLESS.items():
        if isinstance(layer, kind):
            return module()
    raise ValueError(f"no torch module for layer spec {layer!r}")


def build(layers, dtype="float64", seed=None):
    """torch.nn.Sequential for a spec; torch's default init, under torch.manual_seed(seed) when seed is given."""
    layers = spec.validate(layers)
    dtype = torch_dtype(dtype)
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        return nn.Sequential(*(_module(layer, dtype) for layer in layers))


def from_numpy(state_dict):
    """{name: ndarray} -> {name: torch tensor}: copies, dtype kept."""
    return {name: torch.tensor(np.asarray(value)) for name, value in state_dict.items()}


def to_numpy(state_dict):
    """{name: torch tensor} -> {name: ndarray}: copies, dtype kept."""
    return {name: value.detach().cpu().numpy().copy() for name, value in state_dict.items()}
