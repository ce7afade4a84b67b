"""Layers, each backward right beside its forward: Linear, Flatten, ReLU, Sigmoid, Tanh, Dropout."""
import numpy as np

from manual import spec as S


class Layer:
    """The contract every layer keeps; subclasses write forward and backward side by side.

    params and grads are dicts keyed by torch's names ("weight", "bias"; {} for parameterless layers), with
    torch's shapes, in the layer's dtype. forward(x) returns the output and caches only what backward needs
    (the input for Linear, the im2col columns for Conv2d, the mask/activation for elementwise layers, the
    argmax routing for MaxPool2d). backward(dout, input_grad=True) uses that cache: it OVERWRITES grads
    (never accumulates) and returns dL/dx, or None when input_grad is False (the input gradient's cost skipped).
    """

    def __init__(self, spec, dtype):
        self.spec, self.dtype = spec, np.dtype(dtype)
        self.name = S.describe((spec,))
        self.params, self.grads, self.training = {}, {}, True

    def check(self, x, shape=None):
        """x itself, if it is an array of this layer's dtype and shape (None: any size); else ValueError."""
        if not isinstance(x, np.ndarray) or x.dtype != self.dtype:
            got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
            raise ValueError(f"{self.name} expects {self.dtype} input, got {got}")
        if shape is not None and (x.ndim != len(shape) or any(w not in (None, d) for w, d in zip(shape, x.shape))):
            want = ", ".join("N" if w is None else str(w) for w in shape)
            raise ValueError(f"{self.name} expects input of shape ({want}), got {x.shape}")
        return x

    def forward(self, x):
        """The output for input x; caches what backward needs."""
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, dout, input_grad=True):
        """dL/dx for upstream dout (None when input_grad is False); overwrites grads."""
        raise NotImplementedError(f"{type(self).__name__}.backward")


class Linear(Layer):
    """out = x W^T + b, with torch's layout: weight (out, in), bias (out,)."""

    def __init__(self, spec, dtype):
        super().__init__(spec, dtype)
        self.params = {"weight": np.zeros((spec.out_features, spec.in_features), self.dtype),
                       "bias": np.zeros(spec.out_features, self.dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        self.x = self.check(x, (None, self.spec.in_features))     # (N, in)
        out = x @ self.params["weight"].T                           # (N, out)
        out += self.params["bias"]
        return out

    def backward(self, dout, input_grad=True):
        np.dot(dout.T, self.x, out=self.grads["weight"])           # (out, in)
        np.sum(dout, axis=0, out=self.grads["bias"])               # (out,)
        return dout @ self.params["weight"] if input_grad else None  # (N, in)


class Flatten(Layer):
    """(N, ...) -> (N, prod(...)), like torch's Flatten(start_dim=1)."""

    def forward(self, x):
        if self.check(x).ndim < 2:
            raise ValueError(f"{self.name} expects input of shape (N, ...), got {x.shape}")
        self.shape = x.shape
        return x.reshape(len(x), -1)                                # (N, C*H*W)

    def backward(self, dout, input_grad=True):
        return dout.reshape(self.shape) if input_grad else None


class ReLU(Layer):
    """max(0, x), with relu'(0) = 0 like torch."""

    def forward(self, x):
        self.mask = self.check(x) > 0
        return np.maximum(x, 0)

    def backward(self, dout, input_grad=True):
        return dout * self.mask if input_grad else None


def sigmoid(x):
    """1 / (1 + e^-x), computed from e^-|x| so that no |x| overflows."""
    e = np.abs(x)
    np.negative(e, out=e)
    with np.errstate(under="ignore"):                              # e^-|x| -> 0 is the exact limit
        np.exp(e, out=e)
    s = np.where(x >= 0, 1, e)
    s /= 1 + e
    return s


class Sigmoid(Layer):
    """sigmoid(x); s' = s (1 - s)."""

    def forward(self, x):
        self.s = sigmoid(self.check(x))
        return self.s

    def backward(self, dout, input_grad=True):
        return dout * self.s * (1 - self.s) if input_grad else None


class Tanh(Layer):
    """tanh(x); tanh' = 1 - tanh^2."""

    def forward(self, x):
        self.t = np.tanh(self.check(x))
        return self.t

    def backward(self, dout, input_grad=True):
        return dout * (1 - self.t * self.t) if input_grad else None


class Dropout(Layer):
    """Inverted dropout: zero each input with probability p and scale the rest by 1/(1-p); identity in eval mode."""

    def __init__(self, spec, dtype, seed=0):
        super().__init__(spec, dtype)
        self.rng = np.random.default_rng(seed)

    def forward(self, x):
        self.check(x)
        if not self.training or self.spec.p == 0:
            self.mask = None
            return x
        keep = self.rng.random(x.shape, dtype=self.dtype) >= self.spec.p
        self.mask = keep / self.dtype.type(1 - self.spec.p)        # 0 or 1/(1-p), same shape as x
        return x * self.mask

    def backward(self, dout, input_grad=True):
        if not input_grad:
            return None
        return dout if self.mask is None else dout * self.mask
