"""Sequential networks: whole-network gradients against finite differences, state dicts, modes, errors."""
import numpy as np
import pytest

import manual
from manual import gradcheck, spec
from manual.layers import Dropout
from manual.losses import cross_entropy
from manual.network import LOSSES
from tests.random_arch import input_shape
from tests.tolerances import AGREE_F32, assert_finite_diff

def batch(name, n=2, seed=0, dtype=np.float64):
    """Random inputs in [0, 1) shaped for the named architecture, and integer labels (targets for chain)."""
    rng = np.random.default_rng(seed)
    x = rng.random(input_shape(spec.get(name), n)).astype(dtype)
    return x, (rng.standard_normal((n, 1)).astype(dtype) if name == "chain" else rng.integers(0, 10, n))


def block(shape, rng, size):
    """Random contiguous slices, at most size long on each axis (whole axes when size is None)."""
    starts = [rng.integers(n - size + 1) if size and n > size else None for n in shape]
    return tuple(slice(None) if s is None else slice(s, s + size) for s in starts)


def param_errors(net, x, y, size=None, loss="cross_entropy", reduction="sum", seed=0):
    """{name: rel_error} of loss_and_grads's grads against central differences of the loss (on random blocks)."""
    rng = np.random.default_rng(seed)
    analytic = {k: g.copy() for k, g in net.loss_and_grads(x, y, reduction, loss)[1].items()}
    value = lambda: LOSSES[loss](net.forward(x), y, reduction)[0]
    return {k: gradcheck.rel_error(analytic[k][b], gradcheck.numerical_gradient(value, p[b]))
            for k, p in net.params.items() for b in [block(p.shape, rng, size)]}


def input_error(net, x, size=None, seed=0):
    """rel_error of backward's dL/dx against central differences of (forward(x) * dout).sum() (on a random block)."""
    rng = np.random.default_rng(seed)
    dout = rng.standard_normal(net.forward(x).shape)
    dx, b = net.backward(dout), block(x.shape, rng, size)
    return gradcheck.rel_error(dx[b], gradcheck.numerical_gradient(lambda: float(np.sum(net.forward(x) * dout)), x[b]))


@pytest.mark.parametrize("name, options, size, loss, reduction", [
    ("chain", dict(depth=3), None, "mse", "sum"),             # sigmoid: deeper chains' gradients vanish below FD noise
    ("chain", dict(depth=6, activation="tanh"), None, "mse", "mean"),
    ("mlp", dict(hidden=(5, 4)), None, "cross_entropy", "sum"),
    ("mlp", dict(hidden=(3,), activation="tanh"), None, "cross_entropy", "mean"),
    ("mlp-sigmoid", {}, 4, "cross_entropy", "sum"),           # random 4x4 blocks of every tensor
    ("mlp", {}, 4, "cross_entropy", "mean"),                  # the real 784-256-128-10
    ("lenet", {}, 3, "cross_entropy", "sum"),                 # random 3x3(x3x3) blocks
])
def test_network_gradients_match_finite_differences(name, options, size, loss, reduction):
    net = manual.build(spec.get(name, **options), seed=1)
    x, y = batch(name)
    errors = param_errors(net, x, y, size, loss, reduction)
    assert_finite_diff({**errors, "input": input_error(net, x, size)})


def test_dropout_network_gradients_match_finite_differences_with_masks_held_fixed():
    net = manual.build((spec.Linear(6, 5), spec.Tanh(), spec.Dropout(0.4), spec.Linear(5, 3)), seed=2)
    dropout = net.layers[2]
    forward = dropout.forward
    dropout.forward = lambda x: (setattr(dropout, "rng", np.random.default_rng(9)), forward(x))[1]
    x, y = np.random.default_rng(0).standard_normal((4, 6)), np.array([0, 2, 1, 2])
    assert_finite_diff(param_errors(net, x, y))
    assert 0 < np.count_nonzero(dropout.mask == 0) < dropout.mask.size


def test_loss_and_grads_overwrites_grads_and_agrees_with_backward_computing_the_input_gradient():
    net = manual.build(spec.get("mlp", hidden=(8,)), seed=0)
    x, y = batch("mlp", n=5)
    first = {k: g.copy() for k, g in net.loss_and_grads(x, y)[1].items()}
    _, again = net.loss_and_grads(x, y)
    _, dlogits = cross_entropy(net.forward(x), y)
    assert net.backward(dlogits).shape == x.shape
    for k in first:
        np.testing.assert_array_equal(again[k], first[k])
        np.testing.assert_array_equal(net.grads()[k], first[k])
    net.forward(x)
    net.backward(np.zeros((5, 10)))
    assert not any(g.any() for g in net.grads().values())


def test_float32_network_stays_float32_and_agrees_with_float64():
    s = spec.get("lenet")
    net64, net32 = manual.build(s, seed=0), manual.build(s, seed=0, dtype=np.float32)
    x, y = batch("lenet", n=3)
    loss64, grads64 = net64.loss_and_grads(x, y, reduction="mean")
    loss32, grads32 = net32.loss_and_grads(x.astype(np.float32), y, reduction="mean")
    assert net32.forward(x.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(loss32, loss64, **AGREE_F32)
    for k, g in grads32.items():
        assert g.dtype == np.float32, k
        np.testing.assert_allclose(g, grads64[k], **AGREE_F32, err_msg=k)


def test_state_dict_has_torch_keys_and_shapes_and_holds_copies():
    net = manual.build(spec.get("mlp"), seed=0)
    state = net.state_dict()
    assert {k: v.shape for k, v in state.items()} == {
        "0.weight": (256, 784), "0.bias": (256,), "2.weight": (128, 256), "2.bias": (128,),
        "4.weight": (10, 128), "4.bias": (10,)}
    state["0.bias"][:] = 5
    assert not (net.params["0.bias"] == 5).any()
    assert list(manual.build(spec.get("lenet")).state_dict())[:4] == ["0.weight", "0.bias", "3.weight", "3.bias"]


def test_load_state_dict_round_trips_into_the_live_arrays():
    source, target = manual.build(spec.get("mlp", hidden=(4,)), seed=1), manual.build(spec.get("mlp", hidden=(4,)), seed=2)
    live = target.params["0.weight"]
    target.load_state_dict(source.state_dict())
    assert target.params["0.weight"] is live
    for k, v in source.params.items():
        np.testing.assert_array_equal(target.params[k], v)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("2.bias"), r"missing \['2.bias'\]"),
    (lambda d: d.update({"4.weight": np.zeros((1, 1))}), r"unexpected \['4.weight'\]"),
    (lambda d: d.update({"2.weight": np.zeros((3, 4))}), r"2.weight of Linear\(4, 10\).*\(10, 4\).*\(3, 4\)"),
    (lambda d: d.update({"0.bias": np.zeros(4, np.float32)}), r"0.bias of Linear\(784, 4\).*float64.*float32"),
    (lambda d: d.update({"0.bias": [0.0] * 4}), "0.bias.*list"),
])
def test_load_state_dict_rejects_a_bad_entry_and_changes_nothing(edit, message):
    net = manual.build(spec.get("mlp", hidden=(4,)), seed=0)
    before = net.state_dict()
    state = {k: v + 1 for k, v in before.items()}                # everything else would change
    edit(state)
    with pytest.raises(ValueError, match=message):
        net.load_state_dict(state)
    for k, v in before.items():
        np.testing.assert_array_equal(net.params[k], v)


def test_first_layer_shape_mismatch_names_the_layer_and_both_shapes():
    net = manual.build(spec.get("mlp"))
    with pytest.raises(ValueError, match=r"Linear\(784, 256\).*\(N, 784\).*\(2, 1, 28, 28\)"):
        net.forward(np.zeros((2, 1, 28, 28)))


def test_a_float32_network_refuses_float64_input_instead_of_casting():
    net = manual.build(spec.get("mlp", hidden=(4,)), dtype="float32")
    with pytest.raises(ValueError, match=r"Linear\(784, 4\).*float32.*float64"):
        net.loss_and_grads(np.zeros((2, 784)), np.array([0, 1]))


def test_backward_rejects_a_dout_unlike_the_last_output():
    net = manual.build(spec.get("mlp", hidden=(4,)))
    net.forward(np.zeros((2, 784)))
    with pytest.raises(ValueError, match=r"\(2, 10\).*\(2, 9\)"):
        net.backward(np.zeros((2, 9)))


@pytest.mark.parametrize("dtype", ["float16", "int32", None, "banana", np.int64])
def test_build_accepts_only_float32_and_float64(dtype):
    with pytest.raises(ValueError, match="float32 or float64"):
        manual.build(spec.get("chain"), dtype=dtype)


@pytest.mark.parametrize("dtype", ["float32", np.float32, np.dtype("float64")], ids=["name", "type", "dtype"])
def test_build_accepts_dtype_names_and_numpy_dtypes(dtype):
    assert manual.build(spec.get("chain"), dtype=dtype).params["0.weight"].dtype == np.dtype(dtype)


@pytest.mark.parametrize("call, message", [
    (lambda: spec.get("resnet"), "valid: chain, mlp, mlp-sigmoid, lenet"),
    (lambda: spec.get("mlp", width=3), "unknown option.*width.*valid: hidden, activation"),
    (lambda: manual.build(["Linear"]), "not one of"),
    (lambda: manual.build(spec.get("chain")).loss_and_grads(np.zeros((1, 1)), np.zeros((1, 1)), loss="l1"),
     "unknown loss 'l1'; valid: cross_entropy, mse"),
])
def test_unknown_names_raise_value_errors_listing_the_valid_ones(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_train_and_eval_switch_dropout_and_masks_follow_the_seed():
    s = (spec.Linear(20, 30), spec.Dropout(0.5), spec.Linear(30, 5))
    x = np.random.default_rng(0).standard_normal((8, 20))
    a, b, c = (manual.build(s, seed=seed) for seed in (0, 0, 1))
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    assert not np.array_equal(a.forward(x), a.forward(x))   # a fresh mask each call
    assert a.eval() is a and not any(layer.training for layer in a.layers)
    c.load_state_dict(a.state_dict())
    c.eval()
    np.testing.assert_array_equal(a.forward(x), c.forward(x))
    np.testing.assert_array_equal(a.forward(x), a.layers[2].forward(a.layers[0].forward(x)))
    assert a.train() is a and all(layer.training for layer in a.layers)
    assert isinstance(a.layers[1], Dropout)


def test_lenet_refuses_an_empty_batch_naming_the_layer():
    net = manual.build(spec.get("lenet"))
    with pytest.raises(ValueError, match=r"Flatten\(\) expects input of shape \(N, \.\.\.\) with N >= 1, got \(0, 16, 5, 5\)"):
        net.forward(np.zeros((0, 1, 28, 28)))


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_build_refuses_a_seed_that_is_not_a_whole_number_on_one_line(seed):
    with pytest.raises(ValueError, match=rf"^seed must be an integer >= 0, got {seed!r}$"):
        manual.build(spec.get("mlp"), seed=seed)
