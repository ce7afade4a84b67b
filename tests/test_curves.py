"""Bézier curves between solutions: exact ends, the bend's gradient against finite differences, training lowers
the curve's highest loss below the straight path's on MNIST, and both backends train the same bend."""
import numpy as np
import pytest

import manual
from experiments import data
from experiments.landscape import curves, surfaces
from experiments.landscape.evaluate import Evaluator
from manual import spec as S
from manual.gradcheck import numerical_gradient, rel_error
from manual.optim import SGD
from tests.random_arch import batch
from tests.tolerances import AGREE_F64, ROUNDING_F64, assert_finite_diff

SMALL = (S.Linear(6, 5), S.Tanh(), S.Linear(5, 4), S.ReLU(), S.Linear(4, 3))


def states(arch, *seeds):
    """One float64 kaiming_normal state dict per seed."""
    return [manual.build(arch, init="kaiming_normal", seed=s, dtype="float64").state_dict() for s in seeds]


def random_data(n=40, seed=0):
    return batch((n, 6), 3, [seed, 5])


def test_the_curve_ends_at_its_two_solutions_exactly_and_is_the_evaluator_combination():
    a, c, b = states(SMALL, 0, 1, 2)
    for t, end in ((0.0, a), (1.0, b)):
        point = curves.bezier_point(a, c, b, t)
        assert all(np.array_equal(point[k], end[k]) for k in a), t
    for t in (0.1, 0.5, 0.77):
        _, wc, wb = curves.coefficients(t)
        point = curves.bezier_point(a, c, b, t)
        for k in a:
            np.testing.assert_allclose(point[k], a[k] + wc * (c[k] - a[k]) + wb * (b[k] - a[k]), **ROUNDING_F64)
    x, y = random_data()
    evaluate = Evaluator(SMALL, x, y, dtype="float64")
    ts = np.array([0.0, 0.3, 1.0])
    path = curves.bezier_path(evaluate, a, c, b, ts)
    expected = [evaluate(curves.bezier_point(a, c, b, t))[0][0] for t in ts]
    np.testing.assert_allclose(path["loss"], expected, **ROUNDING_F64)
    assert np.array_equal(path["alpha"], ts)


@pytest.mark.parametrize("t", [0.2, 0.65])
def test_the_bend_gradient_matches_finite_differences(t):
    a, c, b = states(SMALL, 0, 1, 2)
    x, y = random_data()
    net = manual.build(SMALL, dtype="float64")
    _, analytic = curves.bend_gradient(net, a, c, b, t, x, y)
    analytic = {k: v.copy() for k, v in analytic.items()}                # the next backward overwrites them
    loss = lambda: curves.bend_gradient(net, a, c, b, t, x, y)[0]
    assert_finite_diff({k: rel_error(analytic[k], numerical_gradient(loss, c[k])) for k in c})


MNIST_ARCH = S.mlp(hidden=(32,))


def mnist_solution(x, y, seed, epochs=4):
    """A 784-32-10 float64 net after `epochs` of SGD (momentum 0.9, batch 50) on (x, y)."""
    net = manual.build(MNIST_ARCH, init="kaiming_normal", seed=seed, dtype="float64")
    opt = SGD(net.params, lr=0.05, momentum=0.9)
    for epoch in range(epochs):
        for xb, yb in data.batches(x, y, 50, seed, epoch):
            opt.step(net.loss_and_grads(xb, yb, reduction="mean")[1])
    return net.state_dict()


def test_a_trained_bend_lowers_the_highest_loss_below_the_straight_paths_on_mnist():
    x, y = data.load("train", dtype="float64", limit=400)
    a, b = mnist_solution(x, y, 0), mnist_solution(x, y, 1)
    c, losses = curves.train_bezier(MNIST_ARCH, a, b, x, y, steps=100, lr=0.05, batch_size=50, seed=0)
    assert losses.shape == (100,) and np.isfinite(losses).all()
    evaluate = Evaluator(MNIST_ARCH, x, y, dtype="float64")
    ts = surfaces.path_alphas(16, extend=0)
    line, curve = surfaces.interpolate(evaluate, a, b, ts), curves.bezier_path(evaluate, a, c, b, ts)
    assert curve["loss"].max() < line["loss"].max(), (curve["loss"].max(), line["loss"].max())
    untrained = curves.bezier_path(evaluate, a, {k: (a[k] + b[k]) / 2 for k in a}, b, ts)
    assert curve["loss"].max() < untrained["loss"].max()


def test_manual_and_torch_train_the_same_bend():
    a, b = states(SMALL, 0, 1)
    x, y = random_data(n=64)
    manual_c, manual_losses = curves.train_bezier(SMALL, a, b, x, y, 6, 0.1, 16, seed=3)
    torch_c, torch_losses = curves.train_bezier(SMALL, a, b, x, y, 6, 0.1, 16, seed=3, backend="torch")
    np.testing.assert_allclose(manual_losses, torch_losses, **AGREE_F64)
    for k in a:
        np.testing.assert_allclose(manual_c[k], torch_c[k], **AGREE_F64, err_msg=k)
        assert not np.allclose(manual_c[k], (a[k] + b[k]) / 2), k            # the bend moved


def test_bad_arguments_are_refused_naming_them():
    a, b = states(SMALL, 0, 1)
    x, y = random_data()
    with pytest.raises(ValueError, match="unknown backend 'jax'"):
        curves.train_bezier(SMALL, a, b, x, y, 5, 0.1, 8, 0, backend="jax")
    with pytest.raises(ValueError, match="steps must be a positive int"):
        curves.train_bezier(SMALL, a, b, x, y, 0, 0.1, 8, 0)
    with pytest.raises(ValueError, match=r"state_b\['2.weight'\] is float32"):
        curves.train_bezier(SMALL, a, {**b, "2.weight": b["2.weight"].astype(np.float32)}, x, y, 5, 0.1, 8, 0)
    with pytest.raises(ValueError, match=r"state_b lacks '4.bias' of layer 4"):
        curves.train_bezier(SMALL, a, {k: v for k, v in b.items() if k != "4.bias"}, x, y, 5, 0.1, 8, 0)
