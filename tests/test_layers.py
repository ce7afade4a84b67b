"""Each layer of manual/layers.py against central finite differences, plus its edge cases and errors."""
import warnings

import numpy as np
import pytest

from manual import gradcheck, spec
from manual.layers import Dropout, Flatten, Layer, Linear, ReLU, Sigmoid, Tanh
from tests.random_arch import random_layer
from tests.tolerances import ROUNDING_F32, ROUNDING_F64, SAMPLE_FRACTION, assert_finite_diff


def away_from_zero(rng, shape):
    """Random values with |x| in [0.1, 2): no input within reach of ReLU's kink at 0."""
    return rng.uniform(0.1, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


@pytest.mark.parametrize("layer, shape", [
    (Flatten(spec.Flatten(), np.float64), (3, 2, 4, 5)),
    (ReLU(spec.ReLU(), np.float64), (4, 7)),
    (Sigmoid(spec.Sigmoid(), np.float64), (4, 7)),
    (Tanh(spec.Tanh(), np.float64), (2, 3, 5)),
], ids=lambda v: getattr(v, "name", ""))
def test_parameterless_layer_matches_finite_differences(layer, shape):
    x = away_from_zero(np.random.default_rng(1), shape)
    assert_finite_diff(gradcheck.check_layer(layer, x))


def test_linear_matches_finite_differences():
    rng = np.random.default_rng(2)
    layer = random_layer(spec.Linear(6, 4), rng)
    assert_finite_diff(gradcheck.check_layer(layer, rng.standard_normal((5, 6))))


def test_dropout_matches_finite_differences_with_its_mask_held_fixed():
    layer = Dropout(spec.Dropout(0.4), np.float64)

    def forward(x):
        layer.rng = np.random.default_rng(7)                  # the same mask on every call
        return layer.forward(x)

    x = np.random.default_rng(3).standard_normal((6, 5))
    assert_finite_diff(gradcheck.check(forward, layer.backward, x, {}, lambda: {}))
    assert 0 < np.count_nonzero(layer.mask == 0) < x.size  # some, not all, dropped


def test_linear_backward_overwrites_grads_and_can_skip_the_input_gradient():
    rng = np.random.default_rng(4)
    layer = random_layer(spec.Linear(3, 2), rng)
    x, dout = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    layer.forward(x)
    dx = layer.backward(dout)
    first = {k: v.copy() for k, v in layer.grads.items()}
    assert layer.backward(dout, input_grad=False) is None
    for k in first:
        np.testing.assert_array_equal(layer.grads[k], first[k])
    np.testing.assert_allclose(first["weight"], dout.T @ x, **ROUNDING_F64)
    np.testing.assert_allclose(dx, dout @ layer.params["weight"], **ROUNDING_F64)


def test_relu_derivative_at_zero_is_zero():
    layer = ReLU(spec.ReLU(), np.float64)
    x = np.array([[-1.0, 0.0, 2.0]])
    np.testing.assert_array_equal(layer.forward(x), [[0.0, 0.0, 2.0]])
    np.testing.assert_array_equal(layer.backward(np.ones((1, 3))), [[0.0, 0.0, 1.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_saturates_without_any_floating_point_warning(dtype):
    layer = Sigmoid(spec.Sigmoid(), dtype)
    x = np.array([[-1e4, -100.0, 0.0, 100.0, 1e4]], dtype)
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        out = layer.forward(x)
        dx = layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(out[0, [0, 2, 4]], [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(dx[0, [0, 4]], [0.0, 0.0])
    assert out.dtype == dx.dtype == dtype


def test_sigmoid_keeps_relative_precision_far_into_the_negative_tail():
    x = np.array([[-30.0, -700.0]])
    out = Sigmoid(spec.Sigmoid(), np.float64).forward(x)
    np.testing.assert_allclose(out, np.exp(x) / (1 + np.exp(x)), **ROUNDING_F64)


def test_dropout_drops_a_fraction_p_and_scales_the_rest_like_torch():
    p = 0.3
    layer = Dropout(spec.Dropout(p), np.float32, seed=5)
    x = np.ones((400, 500), np.float32)
    out = layer.forward(x)
    dropped = np.mean(out == 0)
    assert abs(dropped - p) < SAMPLE_FRACTION
    np.testing.assert_allclose(out[out != 0], 1 / (1 - p), **ROUNDING_F32)
    assert out.dtype == np.float32


def test_dropout_masks_follow_the_seed_and_vanish_in_eval_mode():
    x = np.ones((50, 40))
    masks = [Dropout(spec.Dropout(0.5), np.float64, seed=s).forward(x) for s in (1, 1, 2)]
    np.testing.assert_array_equal(masks[0], masks[1])
    assert not np.array_equal(masks[0], masks[2])
    layer = Dropout(spec.Dropout(0.5), np.float64)
    layer.training = False
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.backward(x), x)


@pytest.mark.parametrize("make", [
    lambda dt: Linear(spec.Linear(6, 3), dt), lambda dt: Flatten(spec.Flatten(), dt), lambda dt: ReLU(spec.ReLU(), dt),
    lambda dt: Sigmoid(spec.Sigmoid(), dt), lambda dt: Tanh(spec.Tanh(), dt), lambda dt: Dropout(spec.Dropout(0.5), dt),
])
def test_float32_stays_float32_through_forward_and_backward(make):
    layer = make(np.float32)
    x = np.random.default_rng(6).standard_normal((4, 6)).astype(np.float32)
    out = layer.forward(x)
    dx = layer.backward(np.ones_like(out))
    assert out.dtype == dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer.grads.values())


def test_linear_rejects_a_wrong_shape_naming_the_layer_and_both_shapes():
    layer = Linear(spec.Linear(784, 256), np.float64)
    with pytest.raises(ValueError, match=r"Linear\(784, 256\).*\(N, 784\).*\(2, 1, 28, 28\)"):
        layer.forward(np.zeros((2, 1, 28, 28)))


@pytest.mark.parametrize("make", [lambda: Linear(spec.Linear(4, 2), np.float32), lambda: ReLU(spec.ReLU(), np.float32)])
def test_layers_reject_a_wrong_dtype_naming_both(make):
    with pytest.raises(ValueError, match=r"float32.*float64"):
        make().forward(np.zeros((3, 4)))


def test_flatten_rejects_a_one_dimensional_input():
    with pytest.raises(ValueError, match=r"Flatten\(\).*\(5,\)"):
        Flatten(spec.Flatten(), np.float64).forward(np.zeros(5))


def test_the_layer_base_class_leaves_forward_backward_and_the_r_passes_to_subclasses():
    layer, a = Layer(spec.ReLU(), np.float64), np.zeros((1, 1))
    for method, call in (("forward", lambda: layer.forward(a)), ("backward", lambda: layer.backward(a)),
                         ("rforward", lambda: layer.rforward(a, {})), ("rbackward", lambda: layer.rbackward(a, a))):
        with pytest.raises(NotImplementedError, match=f"^Layer.{method}$"):
            call()


@pytest.mark.parametrize("make", [
    lambda: Flatten(spec.Flatten(), np.float64), lambda: ReLU(spec.ReLU(), np.float64),
    lambda: Sigmoid(spec.Sigmoid(), np.float64), lambda: Tanh(spec.Tanh(), np.float64),
    lambda: Dropout(spec.Dropout(0.5), np.float64),
])
def test_every_layer_backward_can_skip_the_input_gradient(make):
    layer = make()
    x = np.random.default_rng(7).standard_normal((3, 4))
    out = layer.forward(x)
    assert layer.backward(np.ones_like(out)).shape == x.shape
    assert layer.backward(np.ones_like(out), input_grad=False) is None
