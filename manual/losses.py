"""Losses on a network's output, each returning (float loss, dL/doutput); and their Hessians applied to R{output}."""
import numpy as np

REDUCTIONS = ("sum", "mean")


def _check_reduction(reduction):
    """Raise ValueError unless reduction is one of REDUCTIONS."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; valid: {', '.join(REDUCTIONS)}")


def _labels(logits, y):
    """y as an intp array of one label in [0, classes) per row of logits; else ValueError."""
    if not isinstance(logits, np.ndarray) or logits.ndim != 2 or logits.dtype.kind != "f":
        raise ValueError(f"cross_entropy expects float logits of shape (N, classes), got {getattr(logits, 'shape', logits)!r}")
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers, got dtype {y.dtype}")
    if y.shape != logits.shape[:1]:
        raise ValueError(f"labels of shape {y.shape} do not match logits of shape {logits.shape}")
    classes = logits.shape[1]
    if y.size and y.astype(np.uint64, copy=False).max() >= classes:    # a negative label wraps to a huge one
        raise ValueError(f"labels must lie in [0, {classes}), got {y[(y < 0) | (y >= classes)][0]}")
    return y.astype(np.intp, copy=False)


def cross_entropy(logits, y, reduction="sum"):
    """-sum_n log softmax(logits_n)[y_n] (the notes' L(W)), via log-sum-exp; gradient softmax - onehot."""
    _check_reduction(reduction)
    y = _labels(logits, y)
    n = len(y)
    z = np.array(logits.T, order="C")                               # (C, N) copy: per-example work on contiguous rows
    z -= z.max(axis=0)                                             # each example's max logit is now 0
    true = y * n + np.arange(n)                                    # flat indices of z[y_i, i]
    picked = z.ravel()[true]                                       # (N,)
    with np.errstate(under="ignore"):                              # e^z -> 0 is the exact limit
        np.exp(z, out=z)
    total = z.sum(axis=0)                                          # (N,), in [1, C]
    loss = float(np.sum(np.log(total) - picked))
    z /= total                                                     # softmax
    z.ravel()[true] -= 1
    if reduction == "mean":                                        # an empty batch's mean is nan, as in torch
        loss = loss / n if n else float("nan")
        z /= max(n, 1)
    return loss, z.T                                               # (N, C)


def mse(out, target, reduction="mean"):
    """sum (out - target)^2, divided by the element count for "mean" (like torch)."""
    _check_reduction(reduction)
    if not isinstance(target, np.ndarray) or target.shape != out.shape or target.dtype != out.dtype:
        got = (target.shape, target.dtype) if isinstance(target, np.ndarray) else type(target).__name__
        raise ValueError(f"mse needs a target of shape {out.shape} and dtype {out.dtype}, got {got}")
    diff = out - target
    loss = float(np.sum(diff * diff))
    diff *= 2                                                      # dL/dout
    if reduction == "mean":
        loss /= diff.size
        diff /= diff.size
    return loss, diff


def softmax(logits):
    """Row-wise softmax of (N, C) logits, max-shifted so that no exponential overflows."""
    p = logits - logits.max(axis=1, keepdims=True)
    with np.errstate(under="ignore"):                              # e^z -> 0 is the exact limit
        np.exp(p, out=p)
    p /= p.sum(axis=1, keepdims=True)
    return p                                                       # (N, C)


def cross_entropy_hessian(logits, rlogits, reduction="sum"):
    """R{δ} = (diag(p) - p p^T) R{z} = p * R{z} - p (p . R{z}) per row, the softmax Hessian; / N for "mean"."""
    _check_reduction(reduction)
    p = softmax(logits)
    rd = p * rlogits                                               # (N, C)
    rd -= p * rd.sum(axis=1, keepdims=True)
    if reduction == "mean":
        rd /= len(rd)
    return rd


def mse_hessian(out, rout, reduction="mean"):
    """R{δ} = R{2 (out - target)} = 2 R{out}, divided by the element count for "mean"."""
    _check_reduction(reduction)
    rd = 2 * rout
    if reduction == "mean":
        rd /= rd.size
    return rd
