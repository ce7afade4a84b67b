"""Seeded initializers: every weight drawn from one np.random.default_rng(seed), layer by layer, in order."""
import math

import numpy as np

# scheme -> (distribution, scale(fan_in, fan_out, arg)): "uniform" draws U(-scale, scale), "normal" N(0, scale^2)
SCHEMES = {
    "xavier_uniform": ("uniform", lambda fan_in, fan_out, arg: math.sqrt(6 / (fan_in + fan_out))),
    "xavier_normal": ("normal", lambda fan_in, fan_out, arg: math.sqrt(2 / (fan_in + fan_out))),
    "kaiming_uniform": ("uniform", lambda fan_in, fan_out, arg: math.sqrt(2) * math.sqrt(3 / fan_in)),
    "kaiming_normal": ("normal", lambda fan_in, fan_out, arg: math.sqrt(2) / math.sqrt(fan_in)),
    "lecun_normal": ("normal", lambda fan_in, fan_out, arg: 1 / math.sqrt(fan_in)),
    "normal": ("normal", lambda fan_in, fan_out, arg: arg),
    "uniform": ("uniform", lambda fan_in, fan_out, arg: arg),
    "zeros": ("normal", lambda fan_in, fan_out, arg: 0.0),
    # torch.nn's default: kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)); bias the same bound
    "torch_default": ("uniform", lambda fan_in, fan_out, arg: 1 / math.sqrt(fan_in)),
}
ALIASES = {"kaiming": "kaiming_normal", "xavier": "xavier_uniform"}
DEFAULT_ARG = {"normal": 0.01, "uniform": 0.1}                     # the only schemes that take "name:arg"


def parse(init):
    """(scheme name, arg) from e.g. "kaiming_normal" or "normal:0.01"; ValueError for anything else."""
    name, colon, text = str(init).partition(":")
    name = ALIASES.get(name, name)
    if name not in SCHEMES:
        raise ValueError(f"unknown init {init!r}; valid: {', '.join([*SCHEMES, *ALIASES])}")
    if colon and name not in DEFAULT_ARG:
        raise ValueError(f"init {name!r} takes no parameter, got {init!r}")
    try:
        arg = float(text) if colon else DEFAULT_ARG.get(name)
    except ValueError:
        raise ValueError(f"init {init!r}: {text!r} is not a number") from None
    if arg is not None and not 0 <= arg < math.inf:
        raise ValueError(f"init {init!r}: the parameter must be finite and >= 0")
    return name, arg


def fans(shape):
    """(fan_in, fan_out) of a weight (out, in, *kernel), as torch computes them."""
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _draw(rng, distribution, scale, shape):
    """An array of the given shape from U(-scale, scale) or N(0, scale^2); zeros without drawing when scale is 0."""
    if scale == 0:
        return np.zeros(shape)
    return rng.uniform(-scale, scale, shape) if distribution == "uniform" else rng.normal(0.0, scale, shape)


def initialize(layers, init="torch_default", seed=0):
    """Overwrite every layer's weight, then bias, in place; biases are zero except under torch_default."""
    name, arg = parse(init)
    distribution, scale = SCHEMES[name]
    rng = np.random.default_rng(seed)
    for layer in layers:
        if "weight" not in layer.params:
            continue
        weight = layer.params["weight"]
        fan_in, fan_out = fans(weight.shape)
        weight[...] = _draw(rng, distribution, scale(fan_in, fan_out, arg), weight.shape)
        if "bias" in layer.params:
            bound = 1 / math.sqrt(fan_in) if name == "torch_default" else 0.0
            layer.params["bias"][...] = _draw(rng, "uniform", bound, layer.params["bias"].shape)
