"""Central finite differences in float64, and the relative error they are compared by."""
import numpy as np


def rel_error(a, b):
    """max|a - b| / max(1e-8, max(|a| + |b|)): the CS231n measure, taken over the whole array."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error needs equal shapes, got {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1e-8, float(np.max(np.abs(a) + np.abs(b)))))


def numerical_gradient(f, x, h=1e-5):
    """dF/dx by central differences; f() reads x, which is perturbed in place and restored."""
    if x.dtype != np.float64:
        raise ValueError(f"finite differences need float64, got {x.dtype}")
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        plus = f()
        x[idx] = old - h
        minus = f()
        x[idx] = old
        grad[idx] = (plus - minus) / (2 * h)
    return grad


def check(forward, backward, x, params, grads, seed=0, h=1e-5):
    """Relative error of backward against finite differences for x and every parameter.

    forward(x) -> out; backward(dout) -> dx; params: {name: live array}; grads() -> {name: array}.
    The scalar differentiated is (out * dout).sum() with a random upstream gradient dout.
    """
    rng = np.random.default_rng(seed)
    dout = rng.standard_normal(forward(x).shape)
    analytic = {"input": backward(dout), **{k: v.copy() for k, v in grads().items()}}
    f = lambda: float(np.sum(forward(x) * dout))
    targets = {"input": x, **params}
    return {name: rel_error(analytic[name], numerical_gradient(f, arr, h)) for name, arr in targets.items()}


def check_layer(layer, x, seed=0, h=1e-5):
    """check() for one layer: its params and grads dicts."""
    return check(layer.forward, layer.backward, x, layer.params, lambda: layer.grads, seed, h)


def check_loss(loss_fn, logits, target, h=1e-5, **kwargs):
    """Relative error of loss_fn(logits, target) -> (loss, dlogits) against finite differences."""
    _, analytic = loss_fn(logits, target, **kwargs)
    numeric = numerical_gradient(lambda: float(loss_fn(logits, target, **kwargs)[0]), logits, h)
    return rel_error(analytic, numeric)
