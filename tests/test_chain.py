"""The notes' single-chain recursion against the generic backward, finite differences, and its σ' bound."""
import numpy as np
import pytest

import manual
from experiments.relative import relative_elementwise
from manual import chain, gradcheck, spec
from tests.tolerances import CHAIN_CLOSED_FORM, FINITE_DIFF

ACTIVATIONS = tuple(chain.CHAIN_ACTIVATIONS)   # sigmoid, tanh, relu
BATCH = 8


def weights(depth, activation, seed):
    """w, b, x, dL/dh_ℓ for a chain; relu gets positive weights and biases so that deep chains stay alive."""
    rng = np.random.default_rng([seed, depth])
    if activation == "relu":
        w, b = rng.uniform(0.5, 1.5, depth), rng.uniform(0.05, 0.5, depth)
    else:
        w, b = rng.choice([-1.0, 1.0], depth) * rng.uniform(0.5, 3.0, depth), rng.uniform(-1.0, 1.0, depth)
    return w, b, rng.standard_normal(BATCH), rng.standard_normal(BATCH)


def assert_relatively_close(closed, generic, what):
    """|a - b| <= CHAIN_CLOSED_FORM (|a| + |b|) elementwise: no floor, so vanishing gradients are checked too."""
    err = relative_elementwise(closed, generic)
    assert np.max(err) <= CHAIN_CLOSED_FORM, f"{what}: relative error {np.max(err):.3g} at {np.argmax(err)}"


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("depth", range(1, 21))
def test_recursion_equals_generic_backward(depth, activation):
    net = manual.build(spec.get("chain", depth=depth, activation=activation), seed=depth)
    w0, b0 = chain.from_state_dict(net.state_dict())
    assert np.array_equal(chain.to_state_dict(w0, b0)["0.weight"], net.state_dict()["0.weight"])
    w, b, x, upstream = weights(depth, activation, seed=0)
    net.load_state_dict(chain.to_state_dict(w, b))
    out = net.forward(x[:, None])                                  # (N, 1)
    dx = net.backward(upstream[:, None])                           # (N, 1)
    grads = net.grads()
    h, _ = chain.forward(w, b, x, activation)
    dw, db, dh = chain.gradients(w, b, x, upstream, activation)
    generic_w, generic_b = chain.from_state_dict(grads)
    assert_relatively_close(h[depth], out[:, 0], "h_l")
    assert_relatively_close(dw, generic_w, "dL/dw")
    assert_relatively_close(db, generic_b, "dL/db")
    assert_relatively_close(dh[0], dx[:, 0], "dL/dx")
    assert np.all(dw != 0), "a dead unit makes the comparison vacuous"


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_recursion_against_finite_differences(activation):
    w, b, x, _ = weights(6, activation, seed=1)
    result = {}

    def backward(dout):
        result["w"], result["b"], dh = chain.gradients(w, b, x, dout, activation)
        return dh[0]

    errors = gradcheck.check(lambda x: chain.forward(w, b, x, activation)[0][-1], backward, x,
                             {"w": w, "b": b}, lambda: result)
    assert max(errors.values()) <= FINITE_DIFF, errors


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("depth", [1, 2, 5, 20])
def test_weight_gradients_obey_the_slope_bound(depth, activation):
    w, b, x, upstream = weights(depth, activation, seed=2)
    dw, _, _ = chain.gradients(w, b, x, upstream, activation)
    assert np.all(np.abs(dw) <= chain.weight_gradient_bound(w, b, x, upstream, activation))


def test_bound_for_two_sigmoid_layers_by_hand():
    w, b, x, upstream = np.array([2.0, -3.0]), np.array([0.5, -0.5]), np.array([1.0, -2.0]), np.array([0.5, 1.5])
    h1 = 1 / (1 + np.exp(-(2.0 * x + 0.5)))
    want = [(1 / 4) ** 2 * 3.0 * np.sum(np.abs(upstream * x)), (1 / 4) * np.sum(np.abs(upstream * h1))]
    np.testing.assert_allclose(chain.weight_gradient_bound(w, b, x, upstream), want, rtol=CHAIN_CLOSED_FORM, atol=0)


def test_float32_stays_float32():
    w, b, x, upstream = (a.astype(np.float32) for a in weights(4, "sigmoid", seed=3))
    h, z = chain.forward(w, b, x)
    dw, db, dh = chain.gradients(w, b, x, upstream)
    assert {a.dtype for a in (h, z, dw, db, dh)} == {np.dtype(np.float32)}


def test_sigmoid_is_finite_and_silent_far_out():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = chain.sigmoid(np.array([-1e4, -50.0, 0.0, 50.0, 1e4]))
    np.testing.assert_array_equal(s[[0, 2, 4]], [0.0, 0.5, 1.0])


@pytest.mark.parametrize("call, message", [
    (lambda: chain.forward([1.0], [0.0], [1.0], activation="softplus"), "unknown activation 'softplus'"),
    (lambda: chain.forward([1.0, 2.0], [0.0], [1.0]), r"w and b .* got \(2,\) and \(1,\)"),
    (lambda: chain.forward([], [], [1.0]), r"ℓ >= 1, got \(0,\) and \(0,\)"),
    (lambda: chain.forward([1.0], [0.0], [[1.0]]), r"x must be a batch of scalars, shape \(N,\), got \(1, 1\)"),
    (lambda: chain.gradients([1.0], [0.0], [1.0, 2.0], [1.0]), r"dL_dhl must have the batch's shape \(2,\)"),
    (lambda: chain.weight_gradient_bound([1.0], [0.0], [1.0], [1.0, 2.0]),
     r"dL_dhl must have the batch's shape \(1,\), got \(2,\)"),
    (lambda: chain.from_state_dict({"0.weight": np.ones((1, 1))}), r"not a chain state dict: keys \['0.weight'\]"),
    (lambda: chain.from_state_dict({"0.weight": np.ones(1), "0.bias": np.ones(1)}),
     r"0.weight must have shape \(1, 1\), got \(1,\)"),
    (lambda: chain.from_state_dict({"0.weight": np.ones((1, 1)), "1.bias": np.ones(1)}),
     r"not a chain state dict: keys \['0.weight', '1.bias'\]"),
    (lambda: chain.from_state_dict({}), r"not a chain state dict: keys \[\]"),
])
def test_bad_inputs_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()
