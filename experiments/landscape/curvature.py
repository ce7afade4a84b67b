"""Curvature of a loss from Hessian-vector products on either backend: extreme eigenvalues by eigsh (Lanczos),
the trace by Hutchinson's estimator, the spectral density by stochastic Lanczos quadrature (SLQ).

Everything runs on H as a scipy LinearOperator over flat float64 vectors; a backend only supplies an hvp callable
{name: array} -> {name: array} (manual: net.hvp_function, the forward run once; torch: double backward through
the gradient's graph built once, torch_ref.hvp.product).
"""
import numpy as np
from scipy.sparse.linalg import LinearOperator, eigsh

import manual
from experiments.devices import numpy_only

BACKENDS = ("manual", "torch")


class Hessian(LinearOperator):
    """H over flat float64 vectors from an hvp callable, keyed and shaped like template; counts its products."""

    def __init__(self, hvp, template):
        self.hvp, self.products = hvp, 0
        self.layout = {k: (np.shape(a), np.asarray(a).dtype) for k, a in template.items()}
        self.stops = np.cumsum([int(np.prod(shape)) for shape, _ in self.layout.values()])
        n = int(self.stops[-1])
        super().__init__(np.dtype(np.float64), (n, n))

    def split(self, flat):
        """A flat vector as {name: array} in the template's shapes and dtypes."""
        parts = np.split(np.ravel(flat), self.stops[:-1])
        return {k: part.reshape(shape).astype(dtype) for (k, (shape, dtype)), part in zip(self.layout.items(), parts)}

    def flat(self, arrays):
        """{name: array} as one float64 vector in the template's order."""
        return np.concatenate([np.ravel(arrays[k]) for k in self.layout]).astype(np.float64)

    def _matvec(self, v):
        self.products += 1
        return self.flat(self.hvp(self.split(v)))

    def _rmatvec(self, v):
        return self._matvec(v)                                     # H is symmetric


def operator(backend, layers, state, x, y, loss="cross_entropy", reduction="mean", dtype="float64", device="cpu"):
    """The Hessian at state on (x, y) as a Hessian operator, its products by the named backend (torch on device;
    manual on the CPU only)."""
    if backend == "manual":
        numpy_only(backend, device)
        net = manual.build(layers, dtype=dtype).eval()
        net.load_state_dict({k: np.asarray(a, net.dtype) for k, a in state.items()})
        return Hessian(net.hvp_function(x, y, loss, reduction), state)
    if backend == "torch":
        from torch_ref.hvp import product                         # torch only when asked for
        return Hessian(product(layers, state, x, y, loss, reduction, dtype, device), state)
    raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")


def extremes(op, k=1, tol=1e-6, seed=0):
    """{"lambda_max", "lambda_min", "top" (k largest, descending), "products"}: eigsh on op, which="LA" then "SA"."""
    if not 1 <= k < op.shape[0]:
        raise ValueError(f"k must lie in [1, {op.shape[0]}), got {k}")
    v0 = np.random.default_rng(seed).standard_normal(op.shape[0])
    before = op.products
    top = np.sort(eigsh(op, k=k, which="LA", v0=v0, tol=tol, return_eigenvectors=False))[::-1]
    bottom = eigsh(op, k=1, which="SA", v0=v0, tol=tol, return_eigenvectors=False)
    return {"lambda_max": float(top[0]), "lambda_min": float(bottom[0]), "top": top, "products": op.products - before}


def rademacher(rng, n):
    """n random signs, +-1.0 each with probability 1/2."""
    return rng.integers(0, 2, n) * 2.0 - 1.0


def hutchinson(op, samples=100, seed=0, z=1.96):
    """tr(H) ≈ mean of v^T H v over Rademacher v: {"trace", "stderr", "ci" (mean -+ z stderr, 95% by default), ...}."""
    if samples < 2:
        raise ValueError(f"hutchinson needs at least 2 samples, got {samples}")
    rng = np.random.default_rng(seed)
    values = np.empty(samples)
    for i in range(samples):
        v = rademacher(rng, op.shape[0])
        values[i] = v @ op.matvec(v)
    mean, stderr = float(values.mean()), float(values.std(ddof=1) / np.sqrt(samples))
    return {"trace": mean, "stderr": stderr, "ci": (mean - z * stderr, mean + z * stderr), "samples": samples,
            "products": samples}


def lanczos(op, v, steps):
    """(alpha, beta): the tridiagonal T of at most `steps` Lanczos steps from v, fully reorthogonalised."""
    steps = min(steps, op.shape[0])
    basis = np.zeros((steps, op.shape[0]))                          # (steps, n), rows orthonormal
    alpha, beta = np.zeros(steps), np.zeros(max(steps - 1, 0))
    q = v / np.linalg.norm(v)
    for j in range(steps):
        basis[j] = q
        w = op.matvec(q)
        alpha[j] = q @ w
        for _ in range(2):                                          # Gram-Schmidt twice: orthogonal to rounding
            w -= basis[:j + 1].T @ (basis[:j + 1] @ w)
        if j == steps - 1:
            break
        beta[j] = np.linalg.norm(w)
        if beta[j] <= 1e-12 * np.abs(alpha[:j + 1]).max(initial=1e-300):   # an invariant subspace: T is exact
            return alpha[:j + 1], beta[:j]
        q = w / beta[j]
    return alpha, beta


def slq(op, steps=80, starts=4, seed=0, points=400, sigma=None):
    """Spectral density by stochastic Lanczos quadrature: per Rademacher start, T's eigenvalues are the nodes and
    the squared first components of its eigenvectors the weights; the density averages Gaussians (width sigma,
    default 1% of the nodes' range) over the starts, on `points` grid points spanning the nodes -+ 5 sigma."""
    rng = np.random.default_rng(seed)
    nodes, weights = [], []
    for _ in range(starts):
        alpha, beta = lanczos(op, rademacher(rng, op.shape[0]), steps)
        theta, vectors = np.linalg.eigh(np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1))
        nodes.append(theta)
        weights.append(vectors[0] ** 2)
    low, high = min(t.min() for t in nodes), max(t.max() for t in nodes)
    sigma = sigma or 0.01 * max(high - low, 1e-12 * max(abs(low), abs(high), 1.0))
    grid = np.linspace(low - 5 * sigma, high + 5 * sigma, points)
    density = np.zeros(points)
    for theta, tau in zip(nodes, weights):
        density += tau @ np.exp(-0.5 * ((grid[None] - theta[:, None]) / sigma) ** 2)
    density /= starts * sigma * np.sqrt(2 * np.pi)
    return {"grid": grid, "density": density, "nodes": nodes, "weights": weights, "sigma": sigma,
            "products": sum(len(t) for t in nodes)}


def summary(op, k=1, tol=1e-6, samples=100, steps=80, starts=4, seed=0):
    """extremes, hutchinson and slq of op in one dict: λ_max, λ_min, top k, trace with its CI, density, products."""
    return {**extremes(op, k, tol, seed), "hutchinson": hutchinson(op, samples, seed),
            "slq": slq(op, steps, starts, seed), "products": op.products}
