"""The notes' single-chain net, one unit per layer, and its gradients by the notes' two formulas.

    h_0 = x,   h_i = σ(w_i h_{i-1} + b_i),   i = 1, ..., ℓ

    dL/dw_i = dL/dh_i · σ'(w_i h_{i-1} + b_i) · h_{i-1}
    dL/dh_i = dL/dh_{i+1} · σ'(w_{i+1} h_i + b_{i+1}) · w_{i+1}

Index mapping: the notes count layers from 1, arrays from 0. w and b have shape (ℓ,) and w[i - 1] is the
notes' w_i; h has shape (ℓ + 1, N) and h[i] is h_i (h[0] = x); z has shape (ℓ, N) and z[i - 1] is
z_i = w_i h_{i-1} + b_i. A batch of N scalar inputs runs at once: loops go over depth, arrays over the batch,
and L is a sum over the batch, so dL/dw_i and dL/db_i sum over it too.

Unrolled for one input, dL/dw_i = dL/dh_ℓ · Π_{j=i+1..ℓ} σ'(z_j) w_j · σ'(z_i) h_{i-1}. With σ' ≤ s
(1/4 for sigmoid, 1 for tanh and relu), summed over the batch:

    |dL/dw_i| ≤ s^(ℓ-i+1) · Π_{j=i+1..ℓ} |w_j| · Σ_n |dL/dh_ℓ| |h_{i-1}|

so each layer down a sigmoid chain multiplies the bound by |w_j| / 4: its gradients vanish unless the
weights are large.
"""
import numpy as np

from manual.layers import sigmoid


def _sigmoid_slope(z):
    """σ'(z) = σ(z) (1 - σ(z)) ≤ 1/4."""
    s = sigmoid(z)
    return s * (1 - s)


CHAIN_ACTIVATIONS = {                             # name: (σ, σ', max σ'): not manual.spec.ACTIVATIONS' layer specs
    "sigmoid": (sigmoid, _sigmoid_slope, 0.25),
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2, 1.0),
    "relu": (lambda z: np.maximum(z, 0), lambda z: z > 0, 1.0),   # relu'(0) = 0, like torch
}


def _activation(name):
    """(σ, σ', max σ') for name, or ValueError listing the valid names."""
    if name not in CHAIN_ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(CHAIN_ACTIVATIONS)}")
    return CHAIN_ACTIVATIONS[name]


def _check(w, b, x):
    """w, b as (ℓ,) arrays and x as (N,), or ValueError naming the shapes."""
    w, b, x = np.asarray(w), np.asarray(b), np.asarray(x)
    if w.ndim != 1 or w.shape != b.shape or len(w) == 0:
        raise ValueError(f"w and b must both have shape (ℓ,) with ℓ >= 1, got {w.shape} and {b.shape}")
    if x.ndim != 1:
        raise ValueError(f"x must be a batch of scalars, shape (N,), got {x.shape}")
    return w, b, x


def forward(w, b, x, activation="sigmoid"):
    """(h, z): h (ℓ + 1, N) with h[i] = h_i, and z (ℓ, N) with z[i - 1] = w_i h_{i-1} + b_i."""
    w, b, x = _check(w, b, x)
    sigma = _activation(activation)[0]
    ell, dtype = len(w), np.result_type(w, b, x)
    h, z = np.empty((ell + 1, len(x)), dtype), np.empty((ell, len(x)), dtype)
    h[0] = x                                             # h_0 = x
    for i in range(1, ell + 1):
        z[i - 1] = w[i - 1] * h[i - 1] + b[i - 1]        # z_i = w_i h_{i-1} + b_i
        h[i] = sigma(z[i - 1])                           # h_i = σ(w_i h_{i-1} + b_i)
    return h, z


def _upstream(dL_dhl, batch):
    """dL/dh_ℓ as an array of the batch's shape (N,), or ValueError."""
    dL_dhl = np.asarray(dL_dhl)
    if dL_dhl.shape != (batch,):
        raise ValueError(f"dL_dhl must have the batch's shape ({batch},), got {dL_dhl.shape}")
    return dL_dhl


def gradients(w, b, x, dL_dhl, activation="sigmoid"):
    """(dL/dw (ℓ,), dL/db (ℓ,), dL/dh (ℓ + 1, N)) for upstream dL/dh_ℓ (N,); dL/dh[0] is dL/dx."""
    h, z = forward(w, b, x, activation)
    slope_of = _activation(activation)[1]
    ell = len(z)
    dw, db, dh = np.empty(ell, h.dtype), np.empty(ell, h.dtype), np.empty_like(h)
    dh[ell] = _upstream(dL_dhl, h.shape[1])
    for i in range(ell, 0, -1):                          # the notes' i = ℓ, ..., 1
        slope = slope_of(z[i - 1])                       # σ'(w_i h_{i-1} + b_i), (N,)
        dw[i - 1] = np.sum(dh[i] * slope * h[i - 1])     # dL/dw_i = dL/dh_i · σ'(w_i h_{i-1} + b_i) · h_{i-1}
        db[i - 1] = np.sum(dh[i] * slope)                # dL/db_i = dL/dh_i · σ'(w_i h_{i-1} + b_i)
        dh[i - 1] = dh[i] * slope * w[i - 1]             # dL/dh_{i-1} = dL/dh_i · σ'(w_i h_{i-1} + b_i) · w_i
    return dw, db, dh                                    # (the last line is the notes' recursion with i -> i - 1)


def weight_gradient_bound(w, b, x, dL_dhl, activation="sigmoid"):
    """The module docstring's bound on |dL/dw_i|, (ℓ,): s^(ℓ-i+1) Π_{j>i} |w_j| Σ_n |dL/dh_ℓ| |h_{i-1}|."""
    h, _ = forward(w, b, x, activation)
    s = _activation(activation)[2]
    ell = len(h) - 1
    bound = np.empty(ell)
    above = np.abs(_upstream(dL_dhl, h.shape[1])).astype(np.float64)  # |dL/dh_ℓ| · Π_{j>i} s |w_j|, (N,)
    for i in range(ell, 0, -1):
        bound[i - 1] = s * np.sum(above * np.abs(h[i - 1]))
        above = above * (s * abs(float(w[i - 1])))
    return bound


def to_state_dict(w, b):
    """w, b as the state dict of manual.build(spec.get("chain", depth=ℓ)): "0.weight" (1, 1), "0.bias" (1,), ..."""
    w, b, _ = _check(w, b, np.zeros(1))
    state = {}
    for i in range(len(w)):                              # the notes' layer i + 1 is spec index 2 i
        state[f"{2 * i}.weight"] = w[i:i + 1].reshape(1, 1).copy()
        state[f"{2 * i}.bias"] = b[i:i + 1].copy()
    return state


def from_state_dict(state):
    """(w, b), each (ℓ,), from a chain net's state dict; ValueError unless its keys and shapes are a chain's."""
    ell = len(state) // 2
    shapes = {k: s for i in range(ell) for k, s in ((f"{2 * i}.weight", (1, 1)), (f"{2 * i}.bias", (1,)))}
    if ell == 0 or set(state) != set(shapes):
        want = sorted(shapes) or ["0.weight", "0.bias"]
        raise ValueError(f"not a chain state dict: keys {sorted(state)}, expected {want}")
    for key, shape in shapes.items():
        if np.shape(state[key]) != shape:
            raise ValueError(f"{key} must have shape {shape}, got {np.shape(state[key])}")
    w = np.concatenate([np.ravel(state[f"{2 * i}.weight"]) for i in range(ell)])
    b = np.concatenate([np.ravel(state[f"{2 * i}.bias"]) for i in range(ell)])
    return w, b
