"""Random directions in parameter space, filter-normalised (Li et al. 2018), and plain vector algebra on state dicts."""
import numpy as np

GUARD = 1e-10   # added to a direction filter's norm before dividing by it

BIAS_MODES = ("zero", "filter")


def filter_normalize(direction, weights, bias="zero"):
    """direction rescaled filter by filter to the norms of weights' filters (in place; returned).

    A filter is one output row of a Linear weight (out, in) or one output channel of a Conv2d weight
    (out, in, k, k). 1-D tensors (biases) are zeroed (bias="zero") or treated as one-element filters ("filter").
    """
    if bias not in BIAS_MODES:
        raise ValueError(f"bias must be one of {', '.join(BIAS_MODES)}, got {bias!r}")
    for name, d in direction.items():
        w = weights[name]
        if d.ndim == 1 and bias == "zero":
            d[...] = 0
            continue
        norm_w = np.linalg.norm(w.reshape(len(w), -1), axis=1)                   # (out,)
        norm_d = np.linalg.norm(d.reshape(len(d), -1), axis=1)                   # (out,)
        d *= (norm_w / (norm_d + GUARD)).astype(d.dtype).reshape(-1, *[1] * (d.ndim - 1))
    return direction


def random_direction(weights, rng, bias="zero"):
    """A Gaussian direction shaped like weights (drawn tensor by tensor, in key order), filter-normalised to them."""
    direction = {name: rng.standard_normal(w.shape).astype(w.dtype, copy=False) for name, w in weights.items()}
    return filter_normalize(direction, weights, bias)


def random_directions(weights, count, seed, bias="zero"):
    """count filter-normalised directions from np.random.default_rng(seed)."""
    rng = np.random.default_rng(seed)
    return [random_direction(weights, rng, bias) for _ in range(count)]


def difference(a, b):
    """a - b for two state dicts with the same keys."""
    return {name: a[name] - b[name] for name in a}


def flatten(state):
    """One 1-D vector of a state dict's tensors in key order."""
    return np.concatenate([np.ravel(v) for v in state.values()])


def unflatten(vector, like):
    """The state dict shaped like `like` whose tensors are consecutive pieces of vector."""
    out, start = {}, 0
    for name, v in like.items():
        out[name] = vector[start:start + v.size].reshape(v.shape).astype(v.dtype, copy=False)
        start += v.size
    return out
