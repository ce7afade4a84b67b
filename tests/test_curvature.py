"""Curvature from Hessian products: eigsh's extremes, Hutchinson's trace and SLQ's density against the full Hessian."""
import numpy as np
import pytest

import manual
from experiments.landscape import curvature
from manual.spec import Linear, Tanh
from tests.random_arch import batch
from tests.tolerances import DENSITY_INTEGRAL, HESSIAN_EIGEN, QUADRATURE_F64, STANDARD_ERRORS

LAYERS = (Linear(6, 10), Tanh(), Linear(10, 4))                   # 114 parameters


@pytest.fixture(scope="module")
def problem():
    """(state, x, y, full Hessian) of a tiny tanh net on 20 random examples, mean cross-entropy."""
    state = manual.build(LAYERS, seed=1).state_dict()
    x, y = batch((20, 6), 4, 0)
    op = curvature.operator("manual", LAYERS, state, x, y)
    full = op @ np.eye(op.shape[0])
    return state, x, y, (full + full.T) / 2


def off_diagonal_variance(matrix):
    """Var(v^T M v) for Rademacher v: 2 sum_{i != j} M_ij^2."""
    return 2 * (np.sum(matrix ** 2) - np.sum(np.diag(matrix) ** 2))


@pytest.mark.parametrize("backend", curvature.BACKENDS)
def test_eigsh_extremes_equal_the_full_hessians_eigenvalues(problem, backend):
    state, x, y, full = problem
    exact = np.linalg.eigh(full)[0]
    op = curvature.operator(backend, LAYERS, state, x, y)
    got = curvature.extremes(op, k=3, tol=0)
    scale = np.abs(exact).max()
    assert abs(got["lambda_max"] - exact[-1]) <= HESSIAN_EIGEN * scale
    assert abs(got["lambda_min"] - exact[0]) <= HESSIAN_EIGEN * scale
    np.testing.assert_allclose(got["top"], exact[::-1][:3], rtol=0, atol=HESSIAN_EIGEN * scale)
    assert got["products"] == op.products > 0
    assert exact[0] < 0 < exact[-1]                                   # an indefinite Hessian: both ends tested


def test_hutchinson_interval_covers_the_trace_and_has_the_right_width(problem):
    state, x, y, full = problem
    samples = 400
    got = curvature.hutchinson(curvature.operator("manual", LAYERS, state, x, y), samples=samples, seed=3)
    exact_stderr = np.sqrt(off_diagonal_variance(full) / samples)
    assert got["ci"][0] <= np.trace(full) <= got["ci"][1]
    assert abs(got["trace"] - np.trace(full)) <= STANDARD_ERRORS * exact_stderr
    assert 0.8 <= got["stderr"] / exact_stderr <= 1.25                # the interval's width is calibrated
    assert curvature.hutchinson(curvature.operator("manual", LAYERS, state, x, y), samples, seed=3) == got


def test_slq_density_integrates_to_one_and_its_moments_estimate_the_traces(problem):
    state, x, y, full = problem
    n, starts = len(full), 60
    op = curvature.operator("manual", LAYERS, state, x, y)
    got = curvature.slq(op, steps=12, starts=starts, seed=4)
    grid, density, sigma = got["grid"], got["density"], got["sigma"]
    np.testing.assert_allclose(np.trapezoid(density, grid), 1.0, **DENSITY_INTEGRAL)
    first = np.array([tau @ theta for theta, tau in zip(got["nodes"], got["weights"])])
    second = np.array([tau @ theta ** 2 for theta, tau in zip(got["nodes"], got["weights"])])
    rng = np.random.default_rng(4)                                    # the same starts, to check each quadrature
    for k in range(starts):
        v = curvature.rademacher(rng, n) / np.sqrt(n)
        np.testing.assert_allclose([first[k], second[k]], [v @ full @ v, v @ full @ full @ v], **QUADRATURE_F64)
    np.testing.assert_allclose(np.trapezoid(grid * density, grid), first.mean(), **DENSITY_INTEGRAL)
    np.testing.assert_allclose(np.trapezoid(grid ** 2 * density, grid), second.mean() + sigma ** 2, **DENSITY_INTEGRAL)
    for estimate, matrix in ((first, full), (second, full @ full)):
        stderr = np.sqrt(off_diagonal_variance(matrix) / starts) / n
        assert abs(estimate.mean() - np.trace(matrix) / n) <= STANDARD_ERRORS * stderr


def test_lanczos_with_as_many_steps_as_dimensions_recovers_every_eigenvalue(problem):
    state, x, y, full = problem
    op = curvature.operator("manual", LAYERS, state, x, y)
    alpha, beta = curvature.lanczos(op, np.ones(len(full)), len(full))
    exact = np.linalg.eigh(full)[0]
    ritz = np.linalg.eigvalsh(np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1))
    assert abs(ritz[-1] - exact[-1]) <= HESSIAN_EIGEN * np.abs(exact).max()
    assert abs(ritz[0] - exact[0]) <= HESSIAN_EIGEN * np.abs(exact).max()


def test_unknown_backend_and_bad_k_are_refused(problem):
    state, x, y, _ = problem
    with pytest.raises(ValueError, match="unknown backend 'jax'"):
        curvature.operator("jax", LAYERS, state, x, y)
    with pytest.raises(ValueError, match="k must lie in"):
        curvature.extremes(curvature.operator("manual", LAYERS, state, x, y), k=0)
