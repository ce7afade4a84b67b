"""Conv2d and MaxPool2d against finite differences, a direct-loop reference, torch's tie rule, and bad inputs."""
import numpy as np
import pytest

from manual import gradcheck, spec
from manual.conv import Conv2d, MaxPool2d
from tests.random_arch import random_layer
from tests.tolerances import AGREE_F32, SAME_WEIGHTS_FORWARD, assert_finite_diff

# (in_channels, out_channels, kernel, stride, padding), input shape (N, C, H, W)
CONV_CASES = [
    ((1, 2, 3, 1, 0), (2, 1, 5, 5)),
    ((2, 3, 3, 2, 1), (2, 2, 7, 6)),       # stride 2, padding 1, non-square
    ((3, 2, 2, 1, 2), (1, 3, 4, 5)),       # padding 2, even kernel, batch 1
    ((2, 2, 5, 3, 2), (2, 2, 9, 8)),       # stride 3 leaves a remainder
    ((1, 6, 5, 1, 2), (2, 1, 8, 8)),       # LeNet's first layer
]
# (kernel, stride), input shape
POOL_CASES = [
    ((2, None), (2, 3, 6, 6)),
    ((2, None), (1, 2, 5, 7)),             # odd sizes: the last row and column are dropped
    ((3, 2), (2, 2, 7, 8)),                # overlapping windows
    ((2, 1), (1, 2, 4, 5)),
    ((3, None), (2, 1, 10, 11)),
]


def distinct(rng, shape):
    """Values 0.1 apart in random order: every window has one maximum, far beyond a finite-difference step."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1


def direct_conv(x, w, b, stride, padding):
    """Torch's Conv2d by its definition, one output number at a time."""
    n, _, h, wd = x.shape
    o, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = (h + 2 * padding - k) // stride + 1, (wd + 2 * padding - k) // stride + 1
    out = np.empty((n, o, oh, ow))
    for i in range(n):
        for c in range(o):
            for r in range(oh):
                for q in range(ow):
                    window = xp[i, :, r * stride:r * stride + k, q * stride:q * stride + k]
                    out[i, c, r, q] = np.sum(window * w[c]) + b[c]
    return out


def direct_pool(x, k, stride):
    """Window maxima, one output number at a time."""
    n, c, h, w = x.shape
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.empty((n, c, oh, ow))
    for r in range(oh):
        for q in range(ow):
            out[:, :, r, q] = x[:, :, r * stride:r * stride + k, q * stride:q * stride + k].max(axis=(2, 3))
    return out


@pytest.mark.parametrize("args, shape", CONV_CASES)
def test_conv_matches_finite_differences(args, shape):
    rng = np.random.default_rng(0)
    layer = random_layer(spec.Conv2d(*args), rng)
    assert_finite_diff(gradcheck.check_layer(layer, rng.standard_normal(shape)))


@pytest.mark.parametrize("args, shape", CONV_CASES)
def test_conv_forward_is_torchs_cross_correlation(args, shape):
    rng = np.random.default_rng(1)
    layer = random_layer(spec.Conv2d(*args), rng)
    x = rng.standard_normal(shape)
    expected = direct_conv(x, layer.params["weight"], layer.params["bias"], args[3], args[4])
    out = layer.forward(x)
    assert out.shape == expected.shape
    assert gradcheck.rel_error(out, expected) <= SAME_WEIGHTS_FORWARD


def test_conv_backward_overwrites_grads_and_can_skip_the_input_gradient():
    rng = np.random.default_rng(2)
    layer = random_layer(spec.Conv2d(2, 3, 3, 1, 1), rng)
    x, dout = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((2, 3, 5, 5))
    layer.forward(x)
    layer.backward(dout)
    first = {k: v.copy() for k, v in layer.grads.items()}
    layer.forward(x)
    assert layer.backward(dout, input_grad=False) is None
    for name, grad in layer.grads.items():
        np.testing.assert_array_equal(grad, first[name])      # the same values again, not twice them


@pytest.mark.parametrize("pool, shape", POOL_CASES)
def test_maxpool_matches_finite_differences(pool, shape):
    rng = np.random.default_rng(3)
    layer = MaxPool2d(spec.MaxPool2d(*pool), np.float64)
    assert_finite_diff(gradcheck.check_layer(layer, distinct(rng, shape)))


@pytest.mark.parametrize("pool, shape", POOL_CASES)
def test_maxpool_forward_takes_window_maxima(pool, shape):
    x = distinct(np.random.default_rng(4), shape)
    layer = MaxPool2d(spec.MaxPool2d(*pool), np.float64)
    k, stride = pool[0], pool[1] or pool[0]
    np.testing.assert_array_equal(layer.forward(x), direct_pool(x, k, stride))


@pytest.mark.parametrize("pool, x, dout, expected", [
    ((2, None),                                                # each window's first maximum, row by row
     [[1, 1, 0, 2], [1, 1, 2, 2], [3, 0, 0, 0], [0, 3, 3, 3]],
     [[10, 20], [30, 40]],
     [[10, 0, 0, 20], [0, 0, 0, 0], [30, 0, 0, 0], [0, 0, 40, 0]]),
    ((2, 1),                                                   # overlapping windows, all tied
     [[1, 1, 1], [1, 1, 1], [1, 1, 1]],
     [[1, 2], [3, 4]],
     [[1, 2, 0], [3, 4, 0], [0, 0, 0]]),
    ((3, 2),                                                   # overlapping windows share a first maximum
     [[5, 0, 5, 0, 0], [0, 0, 0, 0, 0], [5, 0, 5, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
     [[1, 2], [3, 4]],
     [[1, 0, 2, 0, 0], [0, 0, 0, 0, 0], [3, 0, 4, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]),
])
def test_maxpool_ties_send_the_gradient_to_the_first_maximum_like_torch(pool, x, dout, expected):
    layer = MaxPool2d(spec.MaxPool2d(*pool), np.float64)
    layer.forward(np.array(x, float)[None, None])
    dx = layer.backward(np.array(dout, float)[None, None])
    np.testing.assert_array_equal(dx[0, 0], expected)


def test_conv_pool_conv_stack_matches_finite_differences():
    """Layers hand each other batch-innermost views; the composition must still be exact."""
    rng = np.random.default_rng(5)
    layers = [random_layer(spec.Conv2d(2, 3, 3, 1, 1), rng), MaxPool2d(spec.MaxPool2d(2), np.float64),
              random_layer(spec.Conv2d(3, 2, 2, 1, 0), rng)]

    def forward(x):
        for layer in layers:
            x = layer.forward(x)
        return x

    def backward(dout):
        for layer in reversed(layers):
            dout = layer.backward(dout)
        return dout

    params = {f"{i}.{k}": v for i, layer in enumerate(layers) for k, v in layer.params.items()}
    grads = lambda: {f"{i}.{k}": v for i, layer in enumerate(layers) for k, v in layer.grads.items()}
    x = distinct(rng, (2, 2, 6, 6)) - 3.6                     # distinct, so the pool has no near-ties
    assert_finite_diff(gradcheck.check(forward, backward, x, params, grads))


@pytest.mark.parametrize("layer, shape", [
    (random_layer(spec.Conv2d(2, 3, 3, 2, 1), np.random.default_rng(6)), (3, 2, 7, 6)),
    (MaxPool2d(spec.MaxPool2d(2), np.float64), (3, 2, 7, 6)),
], ids=["conv", "pool"])
def test_float32_stays_float32_and_agrees_with_float64(layer, shape):
    rng = np.random.default_rng(7)
    x = distinct(rng, shape)
    out64 = layer.forward(x)
    dout = rng.standard_normal(out64.shape)
    dx64, grads64 = layer.backward(dout), {k: v.copy() for k, v in layer.grads.items()}
    single = type(layer)(layer.spec, np.float32)
    for name, p in layer.params.items():
        single.params[name][...] = p
    out = single.forward(x.astype(np.float32))
    dx = single.backward(dout.astype(np.float32))
    assert out.dtype == dx.dtype == np.float32
    np.testing.assert_allclose(out, out64, **AGREE_F32)
    np.testing.assert_allclose(dx, dx64, **AGREE_F32)
    for name, grad in single.grads.items():
        assert grad.dtype == np.float32
        np.testing.assert_allclose(grad, grads64[name], **AGREE_F32)


@pytest.mark.parametrize("layer, x, words", [
    (Conv2d(spec.Conv2d(3, 4, 3), np.float64), np.zeros((2, 2, 5, 5)), ["Conv2d(3, 4, 3, 1, 0)", "(N, 3, H, W)", "(2, 2, 5, 5)"]),
    (Conv2d(spec.Conv2d(1, 4, 3), np.float64), np.zeros((2, 5, 5)), ["Conv2d(1, 4, 3, 1, 0)", "(N, 1, H, W)", "(2, 5, 5)"]),
    (Conv2d(spec.Conv2d(1, 4, 5, padding=1), np.float64), np.zeros((2, 1, 2, 9)), ["H, W >= 3", "(2, 1, 2, 9)"]),
    (Conv2d(spec.Conv2d(1, 4, 3), np.float64), np.zeros((2, 1, 5, 5), np.float32), ["Conv2d(1, 4, 3, 1, 0)", "float64", "float32"]),
    (MaxPool2d(spec.MaxPool2d(2), np.float64), np.zeros((2, 4, 4)), ["MaxPool2d(2, None)", "(N, C, H, W)", "(2, 4, 4)"]),
    (MaxPool2d(spec.MaxPool2d(3), np.float64), np.zeros((1, 1, 2, 5)), ["H, W >= 3", "(1, 1, 2, 5)"]),
    (MaxPool2d(spec.MaxPool2d(2), np.float32), np.zeros((1, 1, 4, 4)), ["MaxPool2d(2, None)", "float32", "float64"]),
], ids=["channels", "ndim", "conv-too-small", "conv-dtype", "pool-ndim", "pool-too-small", "pool-dtype"])
def test_bad_inputs_raise_naming_the_layer_and_both_shapes(layer, x, words):
    with pytest.raises(ValueError) as err:
        layer.forward(x)
    for word in words:
        assert word in str(err.value)
