"""Hessian-vector products: manual R-operator vs torch's double backward and torch.func, symmetry, differences."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import LinearOperator, eigsh
from torch.func import functional_call

import manual
from experiments import agreement
from experiments.relative import relative_no_floor
from manual import spec
from manual.spec import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sigmoid, Tanh
from tests.random_arch import batch as random_batch, conv_nets, mlps, random_like
from tests.tolerances import HESSIAN_EIGEN, HVP_AGREE, HVP_FINITE_DIFF, HVP_SYMMETRY
from torch_ref import hvp as torch_hvp


def assert_agree(ours, theirs, tol=HVP_AGREE):
    """Every tensor of two {name: array} dicts within tol; the failure names the tensor and its error."""
    assert ours.keys() == theirs.keys()
    errors = {k: relative_no_floor(ours[k], theirs[k]) for k in ours}
    worst = max(errors, key=errors.get)
    assert errors[worst] <= tol, f"{worst} {ours[worst].shape}: rel error {errors[worst]:.3e} > {tol}"
    return errors[worst]


def pair(layers, seed=0):
    """The agreement engine's float64 manual net and torch copy with the same weights, both in eval mode."""
    net, mod = agreement.pair(layers, "float64", seed)
    return net.eval(), mod.eval()


def batch(net, x_shape, loss, seed=0):
    """A seeded input and labels (cross-entropy) or targets (mse) for net's output."""
    classes = net.forward(np.zeros(x_shape)).shape[1]
    return random_batch(x_shape, classes, [seed, 1], targets=loss == "mse")


def direction(net, seed=0):
    """A seeded Gaussian direction keyed like net's params."""
    return random_like(net.params, np.random.default_rng([seed, 2]))


def check(layers, x_shape, loss="cross_entropy", reduction="sum", seed=0):
    """Manual H v equals both torch routes; returns the worst relative error."""
    net, mod = pair(layers, seed)
    x, y = batch(net, x_shape, loss, seed)
    v = direction(net, seed)
    ours = net.hvp(x, y, v, loss=loss, reduction=reduction)
    return max(assert_agree(ours, method(mod, x, y, v, loss, reduction)) for method in torch_hvp.METHODS.values())


CONV = Conv2d(2, 3, 3, stride=2, padding=1)                        # (N, 2, 9, 9) -> (N, 3, 5, 5)
LAYER_ALONE = {                                                     # each layer type between parameterised layers
    "linear": ((Linear(5, 4),), (6, 5)),
    "linear-linear": ((Linear(5, 3), Linear(3, 4)), (6, 5)),       # R{dx} = R{δ} W + δ V feeds the first layer
    "relu": ((Linear(6, 5), ReLU(), Linear(5, 4)), (7, 6)),
    "sigmoid": ((Linear(6, 5), Sigmoid(), Linear(5, 4)), (7, 6)),
    "tanh": ((Linear(6, 5), Tanh(), Linear(5, 4)), (7, 6)),
    "dropout-eval": ((Linear(6, 5), Tanh(), Dropout(0.5), Linear(5, 4)), (7, 6)),
    "conv2d": ((CONV, Sigmoid(), Flatten(), Linear(75, 4)), (3, 2, 9, 9)),
    "conv2d-conv2d": ((CONV, Tanh(), Conv2d(3, 2, 2), Flatten(), Linear(32, 4)), (3, 2, 9, 9)),
    "maxpool-tiles": ((CONV, Tanh(), MaxPool2d(2), Flatten(), Linear(12, 4)), (3, 2, 9, 9)),
    "maxpool-windows": ((CONV, Tanh(), MaxPool2d(3, stride=1), Flatten(), Linear(27, 4)), (3, 2, 9, 9)),
    "flatten-first": ((Flatten(), Linear(18, 4)), (3, 2, 3, 3)),   # no R-pass before the first layer with params
}


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("name", sorted(LAYER_ALONE))
def test_each_layer_type_agrees_with_both_torch_routes(name, loss, reduction):
    check(*LAYER_ALONE[name], loss=loss, reduction=reduction)


class FixedMask(torch.nn.Module):
    """Dropout in training mode with the mask manual drew: x * mask."""

    def __init__(self, mask):
        super().__init__()
        self.mask = torch.tensor(mask)

    def forward(self, x):
        return x * self.mask


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_dropout_in_training_mode_with_its_mask_fixed_agrees(reduction):
    layers = (Linear(6, 5), Tanh(), Dropout(0.4), Linear(5, 4))
    net, mod = pair(layers)
    net.train()
    x, y = batch(net, (7, 6), "cross_entropy")
    v = direction(net)
    ours = net.hvp(x, y, v, reduction=reduction)
    mask = net.layers[2].mask
    assert 0 < np.count_nonzero(mask == 0) < mask.size                # some units dropped, not all
    mod[2] = FixedMask(mask)
    for method in torch_hvp.METHODS.values():
        assert_agree(ours, method(mod, x, y, v, "cross_entropy", reduction))


ARCHS = {                                                           # (name, options, x shape, loss)
    "chain": (dict(depth=4), (5, 1), "mse"),
    "chain-tanh": (dict(depth=6, activation="tanh"), (5, 1), "mse"),
    "mlp": ({}, (8, 784), "cross_entropy"),
    "mlp-sigmoid": ({}, (8, 784), "cross_entropy"),
    "lenet": ({}, (2, 1, 28, 28), "cross_entropy"),
}


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_every_named_architecture_agrees_with_both_torch_routes(arch, reduction):
    options, x_shape, loss = ARCHS[arch]
    check(spec.get(arch.split("-tanh")[0], **options), x_shape, loss, reduction, seed=1)


@settings(max_examples=8)
@given(mlps(), st.integers(0, 2**32 - 1), st.sampled_from(["sum", "mean"]))
def test_random_mlps_agree(net, seed, reduction):
    check(*net, reduction=reduction, seed=seed)


@settings(max_examples=8)
@given(conv_nets(), st.integers(0, 2**32 - 1), st.sampled_from(["sum", "mean"]))
def test_random_conv_nets_agree(net, seed, reduction):
    check(*net, reduction=reduction, seed=seed)


def test_gradient_beside_the_product_equals_loss_and_grads():
    net, _ = pair(spec.get("lenet"))
    x, y = batch(net, (2, 1, 28, 28), "cross_entropy")
    v = direction(net)
    value, grads, hv = net.loss_grads_and_hvp(x, y, v)
    expected_value, expected = net.loss_and_grads(x, y)
    assert value == expected_value
    for k in expected:
        np.testing.assert_array_equal(grads[k], expected[k])
        np.testing.assert_array_equal(hv[k], net.hvp(x, y, v)[k])


def test_hvp_function_runs_the_forward_once_and_gives_hvps_products_for_every_direction():
    net, _ = pair(spec.get("lenet"))
    x, y = batch(net, (2, 1, 28, 28), "cross_entropy")
    product = net.hvp_function(x, y, reduction="mean")
    directions = [direction(net, seed) for seed in (7, 8)]
    got = [product(v) for v in directions]
    for v, hv in zip(directions, got):
        expected = net.hvp(x, y, v, reduction="mean")
        assert all(np.array_equal(hv[k], expected[k]) for k in expected)
    with pytest.raises(ValueError, match="direction 0.bias"):
        product({**directions[0], "0.bias": np.zeros(1)})


@pytest.mark.parametrize("arch", ["mlp-sigmoid", "lenet", "chain"])
def test_products_are_symmetric(arch):
    options, x_shape, loss = ARCHS[arch]
    net, _ = pair(spec.get(arch, **options), seed=2)
    x, y = batch(net, x_shape, loss)
    u, v = direction(net, 3), direction(net, 4)
    hu, hv = net.hvp(x, y, u, loss), net.hvp(x, y, v, loss)
    uhv, vhu = (sum(float(np.vdot(a[k], b[k])) for k in a) for a, b in ((u, hv), (v, hu)))
    assert abs(uhv - vhu) <= HVP_SYMMETRY * (abs(uhv) + abs(vhu)), (uhv, vhu)


def relu_masks(net):
    """The ReLU layers' masks from the last forward."""
    return [layer.mask.copy() for layer in net.layers if isinstance(layer.spec, ReLU)]


@pytest.mark.parametrize("layers, x_shape, loss, reduction", [
    (spec.get("mlp-sigmoid"), (4, 784), "cross_entropy", "sum"),
    (spec.get("chain", depth=5, activation="tanh"), (6, 1), "mse", "mean"),
    (LAYER_ALONE["maxpool-windows"][0], (3, 2, 9, 9), "cross_entropy", "mean"),
    (spec.get("mlp", hidden=(16, 8)), (4, 784), "cross_entropy", "sum"),   # ReLU: the masks must not flip
])
def test_products_equal_central_differences_of_the_gradient(layers, x_shape, loss, reduction):
    net, _ = pair(layers, seed=3)
    x, y = batch(net, x_shape, loss, 3)
    v = direction(net, 3)
    norm = np.sqrt(sum(float(np.vdot(a, a)) for a in v.values()))
    v = {k: a / norm for k, a in v.items()}                         # unit length: h is the step's length
    hv = net.hvp(x, y, v, loss, reduction)
    masks, h, theta = relu_masks(net), 1e-5, net.state_dict()

    def gradient(step):
        net.load_state_dict({k: theta[k] + step * v[k] for k in theta})
        grads = {k: g.copy() for k, g in net.loss_and_grads(x, y, reduction, loss)[1].items()}
        assert all(np.array_equal(a, b) for a, b in zip(relu_masks(net), masks)), "a ReLU kink was crossed"
        return grads

    plus, minus = gradient(h), gradient(-h)
    assert_agree(hv, {k: (plus[k] - minus[k]) / (2 * h) for k in plus}, HVP_FINITE_DIFF)


def flat_hessian(mod, x, y, loss="cross_entropy", reduction="sum"):
    """torch.autograd.functional.hessian of the loss as a function of the flat parameter vector."""
    named = list(mod.named_parameters())
    x, y = torch.tensor(x), torch.tensor(y)

    def of(flat):
        params, start = {}, 0
        for name, p in named:
            params[name], start = flat[start:start + p.numel()].view(p.shape), start + p.numel()
        return torch_hvp.LOSSES[loss](functional_call(mod, params, (x,)), y, reduction=reduction)

    return torch.autograd.functional.hessian(of, torch.cat([p.detach().reshape(-1) for _, p in named])).numpy()


def manual_operator(net, x, y, loss="cross_entropy", reduction="sum"):
    """H as a scipy LinearOperator over flat vectors, each product one net.hvp."""
    shapes = {k: p.shape for k, p in net.params.items()}
    sizes = [int(np.prod(s)) for s in shapes.values()]

    def matvec(flat):
        parts = np.split(np.ravel(flat), np.cumsum(sizes)[:-1])
        hv = net.hvp(x, y, {k: part.reshape(s) for (k, s), part in zip(shapes.items(), parts)}, loss, reduction)
        return np.concatenate([a.ravel() for a in hv.values()])

    return LinearOperator((sum(sizes), sum(sizes)), matvec=matvec, dtype=np.float64)


SMALL = {
    "tanh-mlp": ((Linear(6, 12), Tanh(), Linear(12, 8), Sigmoid(), Linear(8, 4)), (10, 6)),
    "conv": ((Conv2d(1, 3, 3), ReLU(), MaxPool2d(2), Flatten(), Linear(27, 5)), (6, 1, 8, 8)),
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_full_hessian_and_its_extreme_eigenvalues(name):
    layers, x_shape = SMALL[name]
    net, mod = pair(layers, seed=4)
    x, y = batch(net, x_shape, "cross_entropy", 4)
    op = manual_operator(net, x, y, reduction="mean")
    n = op.shape[0]
    assert n < 2000
    ours = op @ np.eye(n)                                           # column i is H e_i
    theirs = flat_hessian(mod, x, y, reduction="mean")
    assert relative_no_floor(ours, theirs) <= HVP_AGREE
    exact = np.linalg.eigh(theirs)[0]
    v0 = np.random.default_rng(0).standard_normal(n)
    top = eigsh(op, k=3, which="LA", v0=v0, tol=0, return_eigenvectors=False)
    bottom = eigsh(op, k=3, which="SA", v0=v0, tol=0, return_eigenvectors=False)
    scale = np.abs(exact).max()
    assert np.abs(np.sort(top) - exact[-3:]).max() <= HESSIAN_EIGEN * scale
    assert np.abs(np.sort(bottom) - exact[:3]).max() <= HESSIAN_EIGEN * scale
    assert np.abs(np.linalg.eigh((ours + ours.T) / 2)[0] - exact).max() <= HESSIAN_EIGEN * scale


@pytest.mark.parametrize("loss, reduction", [("cross_entropy", "sum"), ("cross_entropy", "mean"), ("mse", "mean")])
def test_gauss_newton_product_equals_jacobians_around_the_loss_hessian(loss, reduction):
    layers = (Linear(4, 5), Tanh(), Linear(5, 3))
    net, mod = pair(layers, seed=5)
    x, y = batch(net, (3, 4), loss, 5)
    v = direction(net, 5)
    ours = net.ggnvp(x, y, v, loss, reduction)
    named = list(mod.named_parameters())
    xt, yt = torch.tensor(x), torch.tensor(y)
    flat = torch.cat([p.detach().reshape(-1) for _, p in named])

    def output(f):
        params, start = {}, 0
        for name, p in named:
            params[name], start = f[start:start + p.numel()].view(p.shape), start + p.numel()
        return functional_call(mod, params, (xt,)).reshape(-1)     # (N*C,)

    jac = torch.autograd.functional.jacobian(output, flat).numpy()  # (N*C, P)
    out = output(flat).detach()
    h_loss = torch.autograd.functional.hessian(
        lambda o: torch_hvp.LOSSES[loss](o.view(3, 3), yt, reduction=reduction), out).numpy()   # (N*C, N*C)
    ggn = jac.T @ h_loss @ jac                                       # (P, P)
    expected = ggn @ np.concatenate([a.ravel() for a in v.values()])
    assert relative_no_floor(np.concatenate([a.ravel() for a in ours.values()]), expected) <= HVP_AGREE
    assert_agree(ours, torch_hvp.gauss_newton(mod, x, y, v, loss, reduction))
    assert np.linalg.eigvalsh(ggn).min() >= -HVP_AGREE * np.abs(ggn).max()   # positive semi-definite


@pytest.mark.parametrize("arch", ["mlp", "lenet"])
def test_gauss_newton_agrees_with_torch_func_on_named_architectures(arch):
    options, x_shape, loss = ARCHS[arch]
    net, mod = pair(spec.get(arch, **options), seed=6)
    x, y = batch(net, x_shape, loss, 6)
    v = direction(net, 6)
    assert_agree(net.ggnvp(x, y, v), torch_hvp.gauss_newton(mod, x, y, v))


def bad(change):
    """A valid direction for a small net, changed by change(v)."""
    net = manual.build((Linear(3, 2), Tanh(), Linear(2, 2)))
    v = direction(net)
    change(v)
    return net, v


@pytest.mark.parametrize("change, message", [
    (lambda v: v.pop("2.bias"), r"missing \['2.bias'\]"),
    (lambda v: v.update({"1.weight": np.zeros(2)}), r"unexpected \['1.weight'\]"),
    (lambda v: v.update({"0.weight": np.zeros((3, 2))}), r"0.weight of Linear\(3, 2\).*\(2, 3\).*\(3, 2\)"),
    (lambda v: v.update({"2.weight": np.zeros((2, 2), np.float32)}), r"2.weight .*float64.*float32"),
    (lambda v: v["0.bias"].__setitem__(1, np.nan), r"direction 0.bias has non-finite values"),
    (lambda v: v["2.weight"].__setitem__((0, 0), np.inf), r"direction 2.weight has non-finite values"),
])
def test_a_bad_direction_is_refused_naming_the_key(change, message):
    net, v = bad(change)
    x, y = np.zeros((2, 3)), np.zeros(2, int)
    for product in (net.hvp, net.ggnvp):
        with pytest.raises(ValueError, match=message):
            product(x, y, v)
    with pytest.raises(ValueError, match="dict keyed like grads"):
        net.hvp(x, y, list(v.values()))
