"""Relative errors without a floor (manual.gradcheck.rel_error is CS231n's, floored at 1e-8): a vanishing
gradient must agree to the tolerance of its own size."""
import numpy as np


def relative_no_floor(a, b):
    """max|a - b| / max(|a| + |b|) over the whole array; 0 when both are all zero."""
    scale = float(np.max(np.abs(a) + np.abs(b), initial=0.0))
    return 0.0 if scale == 0 else float(np.max(np.abs(a - b))) / scale


def relative_elementwise(a, b):
    """|a - b| / (|a| + |b|) element by element, 0 where both are 0."""
    return np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), np.finfo(np.float64).tiny)
