"""Loss and accuracy at many points centre + sum_k c_k D_k of parameter space, batched, on either backend.

When the first layer is a Linear or a Conv2d its output is linear in its weights,
X(W + aU + bV)^T = XW^T + aXU^T + bXV^T, so each data chunk's products with the centre and every
direction are computed once and each grid point costs one small combination instead of a first-layer
product: the sum over all but the last direction is kept while the leading coordinates repeat (a surface's
grid row), so a point costs one axpy. The chunk is the outer loop, so those products stay in cache while every
point reuses them.
"""
import math

import numpy as np

import manual
from experiments.backends.manual import score
from experiments.devices import numpy_only
from experiments.landscape import evaluation_backend
from manual import spec
from manual.layers import Linear, ReLU

TRICK_LAYERS = (spec.Linear, spec.Conv2d)
CACHE_BYTES = 4 << 20   # the first-layer products of one chunk (centre and every direction) should fit in this
MAX_CHUNK = 1000        # examples per chunk at most (and always, without the first-layer products)


class EvaluationBackend:
    """An engine the Evaluator drives, built as Cls(arch, dtype, device): arrays, parameters overwritten in place,
    forward passes and scores."""

    def asarray(self, a):
        """The engine's array for a NumPy array (no copy where it can)."""
        raise NotImplementedError

    def empty(self, shape):
        """An uninitialised array of shape in the evaluation dtype."""
        raise NotImplementedError

    def combine(self, coeffs, stack, out):
        """out = coeffs @ stack: one point's parameters (or first-layer outputs) from the (K+1, n) stack."""
        raise NotImplementedError

    def axpy(self, alpha, x, y, out):
        """out = y + alpha * x: arrays of one shape, alpha a float (a value of the evaluation dtype)."""
        raise NotImplementedError

    def load(self, flat, layout):
        """Copy the pieces of flat (one vector, in layout's order) into the live parameters."""
        raise NotImplementedError

    def forward(self, x, start=0, stop=None, scratch=False):
        """The output of layers start..stop-1 of the network on x, dropout off; scratch: x may be overwritten."""
        raise NotImplementedError

    def score(self, logits, y):
        """(summed cross-entropy, number correct) of logits against labels y."""
        raise NotImplementedError


class ManualEvaluation(EvaluationBackend):
    """The NumPy engine: a manual.Sequential whose live parameters are overwritten point by point; CPU only."""

    def __init__(self, arch, dtype, device="cpu"):
        numpy_only("manual", device)
        self.net = manual.build(arch, init="zeros", dtype=dtype).eval()
        self.live, self.dtype = self.net.params, manual.as_dtype(dtype)
        self.buffers = {}   # {(layer index, shape): a Linear layer's output, reused point after point; and zeros}

    def asarray(self, a):
        return np.ascontiguousarray(a)

    def empty(self, shape):
        return np.empty(shape, self.dtype)

    def combine(self, coeffs, stack, out):
        np.dot(coeffs, stack, out=out)

    def axpy(self, alpha, x, y, out):
        np.multiply(x, alpha, out=out)
        out += y

    def load(self, flat, layout):
        for name, (start, stop, shape) in layout.items():
            np.copyto(self.live[name], flat[start:stop].reshape(shape))

    def forward(self, x, start=0, stop=None, scratch=False):
        """ReLU works in place on arrays this pass may overwrite (its mask is for backward, not needed here): the
        input when scratch, and any layer output that is not a view of its input. A Linear layer writes into an
        array kept for its output shape (the same products and sums as Linear.forward, without a fresh array and
        its page faults at every point): the result is valid until the next forward."""
        for i, layer in enumerate(self.net.layers[start:stop], start):
            if scratch and isinstance(layer, ReLU):
                x = np.maximum(x, self.zeros(x.shape[-1]), out=x)   # against a row of zeros: NumPy's vector loop,
                continue                                           # about 2.5x the speed of a scalar 0
            if isinstance(layer, Linear) and x.ndim == 2:
                out = self.buffer(i, (len(x), layer.spec.out_features))                          # (N, out)
                np.matmul(x, layer.params["weight"].T, out=out)
                out += layer.params["bias"]
            else:
                out = layer.forward(x)
            scratch = scratch or not np.may_share_memory(out, x)
            x = out
        return x

    def buffer(self, index, shape):
        """The kept output array of layer index for this shape."""
        if (index, shape) not in self.buffers:
            self.buffers[index, shape] = np.empty(shape, self.dtype)
        return self.buffers[index, shape]

    def zeros(self, n):
        """A kept row of n zeros."""
        if ("zeros", n) not in self.buffers:
            self.buffers["zeros", n] = np.zeros(n, self.dtype)
        return self.buffers["zeros", n]

    def score(self, logits, y):
        return score(logits, y)


def layout_of(state, names):
    """{name: (start, stop, shape)} of the named tensors laid end to end."""
    layout, start = {}, 0
    for name in names:
        layout[name] = (start, start + state[name].size, state[name].shape)
        start += state[name].size
    return layout


def as_coords(coords, k):
    """coords as a (P, k) float64 array; None means the centre alone."""
    if coords is None:
        return np.zeros((1, k))
    coords = np.asarray(coords, np.float64)
    return coords.reshape(len(coords), k)


def flat(state, names, dtype):
    """The named tensors of a state dict laid end to end in one vector of dtype."""
    return np.concatenate([np.ravel(state[n]) for n in names]).astype(dtype, copy=False)


class Evaluator:
    """Mean cross-entropy and accuracy of one architecture on a fixed (x, y) at many points."""

    def __init__(self, arch, x, y, backend="manual", dtype="float64", trick=True, chunk=None, device="cpu"):
        self.arch, self.dtype, self.n = spec.validate(arch), manual.as_dtype(dtype), len(x)
        self.backend = evaluation_backend(backend)(self.arch, self.dtype, device)
        self.trick = trick and isinstance(self.arch[0], TRICK_LAYERS)
        self.x, self.y = self.backend.asarray(np.asarray(x, self.dtype)), self.backend.asarray(y)
        self.chunk = chunk
        self.first_shape = tuple(self.backend.forward(self.x[:1], 0, 1).shape[1:])   # first layer's output, one example

    def chunk_size(self, directions):
        """Examples per chunk: few enough that the first-layer products with the centre and every direction fit
        in CACHE_BYTES (they are reused at every point), at most MAX_CHUNK."""
        if self.chunk or not self.trick:
            return self.chunk or MAX_CHUNK
        per_example = (directions + 1) * math.prod(self.first_shape) * self.dtype.itemsize
        return max(32, min(MAX_CHUNK, CACHE_BYTES // per_example))

    def __call__(self, centre, directions=(), coords=None, progress=None):
        """(loss (P,), accuracy (P,)) at centre + coords[p] @ directions; coords (P, K), K = len(directions).

        progress, if given, is called with a fraction of a point as the work advances (sums to P).
        """
        coords = as_coords(coords, len(directions))
        points, b = [centre, *directions], self.backend
        first = [n for n in centre if n.startswith("0.")] if self.trick else []
        rest = [n for n in centre if n not in first]
        layout = layout_of(centre, rest)
        stack = b.asarray(np.stack([flat(p, rest, self.dtype) for p in points]))       # (K+1, n_rest)
        params = b.empty(stack.shape[1])                                               # (n_rest,)
        host = np.hstack([np.ones((len(coords), 1)), coords]).astype(self.dtype)       # (P, K+1)
        weights = b.asarray(host)                                                      # (P, K+1)
        size = self.chunk_size(len(directions))
        per_example = math.prod(self.first_shape)
        products = b.empty((len(points), size * per_example)) if first else None      # (K+1, chunk*out)
        lead, z = (b.empty(size * per_example) for _ in range(2)) if first else (None, None)   # (chunk*out,)
        totals, hits = np.zeros(len(coords)), np.zeros(len(coords), np.int64)
        starts = range(0, self.n, size)
        for lo in starts:
            xc, yc = self.x[lo:lo + size], self.y[lo:lo + size]
            m = len(xc) * per_example
            if first:
                self._first_products(xc, points, first, products[:, :m])
            held = None                                     # the leading coordinates whose sum lead[:m] holds
            for p in range(len(coords)):
                b.combine(weights[p], stack, params)
                b.load(params, layout)
                if first:
                    if held is None or not np.array_equal(coords[p, :-1], held):
                        held = coords[p, :-1]
                        b.combine(weights[p, :-1], products[:-1, :m], lead[:m])
                    b.axpy(float(host[p, -1]), products[-1, :m], lead[:m], z[:m])
                    logits = b.forward(z[:m].reshape(len(xc), *self.first_shape), 1, scratch=True)
                else:
                    logits = b.forward(xc)
                loss, correct = b.score(logits, yc)
                totals[p] += loss
                hits[p] += correct
                if progress:
                    progress(1 / len(starts))
        return totals / self.n, hits / self.n

    def _first_products(self, xc, points, first, out):
        """Fill out (K+1, chunk*out) with the first layer's outputs on xc, row k with points[k]'s weights."""
        layout = layout_of(points[0], first)
        for k, point in enumerate(points):
            self.backend.load(self.backend.asarray(flat(point, first, self.dtype)), layout)
            out[k] = self.backend.forward(xc, 0, 1).reshape(-1)
