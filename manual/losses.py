"""Losses on a network's output, each returning (float loss, dL/doutput)."""
import numpy as np

REDUCTIONS = ("sum", "mean")


def _check_reduction(reduction):
    """Raise ValueError unless reduction is one of REDUCTIONS."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; valid: {', '.join(REDUCTIONS)}")


def _labels(logits, y):
    """y as an integer array of one label in [0, classes) per row of logits; else ValueError."""
    if not isinstance(logits, np.ndarray) or logits.ndim != 2 or logits.dtype.kind != "f":
        raise ValueError(f"cross_entropy expects float logits of shape (N, classes), got {getattr(logits, 'shape', logits)!r}")
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers, got dtype {y.dtype}")
    if y.shape != logits.shape[:1]:
        raise ValueError(f"labels of shape {y.shape} do not match logits of shape {logits.shape}")
    classes = logits.shape[1]
    bad = (y < 0) | (y >= classes)
    if bad.any():
        raise ValueError(f"labels must lie in [0, {classes}), got {y[bad][0]}")
    return y


def cross_entropy(logits, y, reduction="sum"):
    """-sum_n log softmax(logits_n)[y_n] (the notes' L(W)), via log-sum-exp; gradient softmax - onehot."""
    _check_reduction(reduction)
    y = _labels(logits, y)
    rows = np.arange(len(y))
    z = logits - logits.max(axis=1, keepdims=True)                 # (N, C), each row's max is 0
    with np.errstate(under="ignore"):                              # e^z -> 0 is the exact limit
        e = np.exp(z)                                              # (N, C)
    total = e.sum(axis=1, keepdims=True)                           # (N, 1), in [1, C]
    loss = float(np.sum(np.log(total[:, 0]) - z[rows, y]))
    dlogits = e
    dlogits /= total                                               # softmax
    dlogits[rows, y] -= 1
    if reduction == "mean":
        loss /= len(y)
        dlogits /= len(y)
    return loss, dlogits


def mse(out, target, reduction="mean"):
    """sum (out - target)^2, divided by the element count for "mean" (like torch)."""
    _check_reduction(reduction)
    if not isinstance(target, np.ndarray) or target.shape != out.shape or target.dtype != out.dtype:
        got = (target.shape, target.dtype) if isinstance(target, np.ndarray) else type(target).__name__
        raise ValueError(f"mse needs a target of shape {out.shape} and dtype {out.dtype}, got {got}")
    diff = out - target
    loss = float(np.sum(diff * diff))
    dout = diff
    dout *= 2
    if reduction == "mean":
        loss /= diff.size
        dout /= diff.size
    return loss, dout
