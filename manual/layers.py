"""Layers, each backward beside its forward and each R-pass beside those: Linear, Flatten, ReLU, Sigmoid, Tanh, Dropout.

R{f} = d/dr f(θ + r v) at r = 0 (Pearlmutter 1994): rforward carries R{·} of every activation along the direction v,
rbackward carries R{δ} of every upstream gradient, and R{dL/dθ} is the Hessian-vector product H v.
"""
import numpy as np

from manual import spec as S


class Layer:
    """The contract every layer keeps; subclasses write forward and backward side by side.

    params and grads are dicts keyed by torch's names ("weight", "bias"; {} for parameterless layers), with
    torch's shapes, in the layer's dtype. forward(x) returns the output and caches only what backward needs
    (the input for Linear, the im2col columns for Conv2d, the mask/activation for elementwise layers, the
    argmax routing for MaxPool2d). backward(dout, input_grad=True) uses that cache: it OVERWRITES grads
    (never accumulates) and returns dL/dx, or None when input_grad is False (the input gradient's cost skipped).

    The R-pass, for Hessian-vector products, runs after forward on the same input. rforward(rx, v) returns
    R{out}: rx is R{x} (None means zero: the network's input does not depend on θ), v the layer's direction
    keyed like params ({} without params); it caches what rbackward needs (rx and v for Linear and Conv2d, the
    im2col columns of rx for Conv2d, R{z} and σ'(z) for Sigmoid and Tanh; ReLU, MaxPool2d, Flatten and Dropout
    reuse forward's routing). rbackward(dout, rdout, input_grad=True) returns (dL/dx, R{dL/dx}), or (None, None)
    when input_grad is False; it OVERWRITES rgrads = R{dL/dθ} (this layer's part of H v) and leaves grads alone.
    """

    def __init__(self, spec, dtype):
        self.spec, self.dtype = spec, np.dtype(dtype)
        self.name = S.describe((spec,))
        self.params, self.grads, self.rgrads, self.training = {}, {}, {}, True

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

    def rforward(self, rx, v):
        """R{out} for R{x} = rx (None: zero) and this layer's direction v; caches what rbackward needs."""
        raise NotImplementedError(f"{type(self).__name__}.rforward")

    def rbackward(self, dout, rdout, input_grad=True):
        """(dL/dx, R{dL/dx}) for upstream dout and R{dout} ((None, None) when input_grad is False); overwrites rgrads."""
        raise NotImplementedError(f"{type(self).__name__}.rbackward")


class Linear(Layer):
    """out = x W^T + b, with torch's layout: weight (out, in), bias (out,)."""

    def __init__(self, spec, dtype):
        super().__init__(spec, dtype)
        self.params = {"weight": np.zeros((spec.out_features, spec.in_features), self.dtype),
                       "bias": np.zeros(spec.out_features, self.dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.rgrads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        self.x = self.check(x, (None, self.spec.in_features))     # (N, in)
        out = x @ self.params["weight"].T                           # (N, out)
        out += self.params["bias"]
        return out

    def backward(self, dout, input_grad=True):
        np.dot(dout.T, self.x, out=self.grads["weight"])           # (out, in)
        np.sum(dout, axis=0, out=self.grads["bias"])               # (out,)
        return dout @ self.params["weight"] if input_grad else None  # (N, in)

    def rforward(self, rx, v):
        """R{x W^T + b} = R{x} W^T + x V^T + V_b (product rule)."""
        self.rx, self.v = rx, v
        rout = self.x @ v["weight"].T                               # (N, out)
        if rx is not None:
            rout += rx @ self.params["weight"].T
        rout += v["bias"]
        return rout

    def rbackward(self, dout, rdout, input_grad=True):
        """R of dW = δ^T x, db = Σ δ, dx = δ W: R{δ}^T x + δ^T R{x}, Σ R{δ}, R{δ} W + δ V."""
        rw = np.dot(rdout.T, self.x, out=self.rgrads["weight"])    # (out, in)
        if self.rx is not None:
            rw += dout.T @ self.rx
        np.sum(rdout, axis=0, out=self.rgrads["bias"])             # (out,)
        if not input_grad:
            return None, None
        w = self.params["weight"]
        rdx = rdout @ w                                             # (N, in)
        rdx += dout @ self.v["weight"]
        return dout @ w, rdx


class Flatten(Layer):
    """(N, ...) -> (N, prod(...)), like torch's Flatten(start_dim=1)."""

    def forward(self, x):
        if self.check(x).ndim < 2 or not len(x):
            raise ValueError(f"{self.name} expects input of shape (N, ...) with N >= 1, got {x.shape}")
        self.shape = x.shape
        return x.reshape(len(x), -1)                                # (N, C*H*W)

    def backward(self, dout, input_grad=True):
        return dout.reshape(self.shape) if input_grad else None

    def rforward(self, rx, v):
        """A reshape is linear: R{out} = R{x} reshaped."""
        return rx.reshape(len(rx), -1)

    def rbackward(self, dout, rdout, input_grad=True):
        """Linear routing: R{dx} = R{dout} reshaped back."""
        return (dout.reshape(self.shape), rdout.reshape(self.shape)) if input_grad else (None, None)


class ReLU(Layer):
    """max(0, x), with relu'(0) = 0 like torch."""

    def forward(self, x):
        self.mask = self.check(x) > 0
        return np.maximum(x, 0)

    def backward(self, dout, input_grad=True):
        return dout * self.mask if input_grad else None

    def rforward(self, rx, v):
        """R{out} = relu'(x) R{x}."""
        return rx * self.mask

    def rbackward(self, dout, rdout, input_grad=True):
        """R{dx} = relu'(x) R{dout}: relu'' = 0 almost everywhere (autograd agrees), so no second-order term."""
        return (dout * self.mask, rdout * self.mask) if input_grad else (None, None)


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

    def rforward(self, rx, v):
        """R{s} = s'(x) R{x}, s' = s (1 - s)."""
        self.rz, self.ds = rx, self.s * (1 - self.s)
        return rx * self.ds

    def rbackward(self, dout, rdout, input_grad=True):
        """R{s' δ} = s'' R{x} δ + s' R{δ}, s'' = s' (1 - 2 s)."""
        if not input_grad:
            return None, None
        rdx = dout * self.rz
        rdx *= 1 - 2 * self.s
        rdx += rdout
        rdx *= self.ds
        return dout * self.ds, rdx


class Tanh(Layer):
    """tanh(x); tanh' = 1 - tanh^2."""

    def forward(self, x):
        self.t = np.tanh(self.check(x))
        return self.t

    def backward(self, dout, input_grad=True):
        return dout * (1 - self.t * self.t) if input_grad else None

    def rforward(self, rx, v):
        """R{t} = t'(x) R{x}, t' = 1 - t^2."""
        self.rz, self.ds = rx, 1 - self.t * self.t
        return rx * self.ds

    def rbackward(self, dout, rdout, input_grad=True):
        """R{t' δ} = t'' R{x} δ + t' R{δ}, t'' = -2 t t'."""
        if not input_grad:
            return None, None
        rdx = dout * self.rz
        rdx *= -2 * self.t
        rdx += rdout
        rdx *= self.ds
        return dout * self.ds, rdx


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

    def rforward(self, rx, v):
        """The mask is fixed, so dropout is linear: R{out} = R{x} * mask (R{x} itself in eval mode)."""
        return rx if self.mask is None else rx * self.mask

    def rbackward(self, dout, rdout, input_grad=True):
        """Linear routing: the same mask on R{dout}."""
        return (self.backward(dout), self.backward(rdout)) if input_grad else (None, None)
