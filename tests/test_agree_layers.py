"""Every layer type and loss, several shapes each: manual forward/backward against torch autograd."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from experiments.agreement import TOLERANCES, pair, row, upstream
from manual import losses, spec
from manual.spec import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sigmoid, Tanh
from tests.agreement import assert_rows, check
from tests.tolerances import SAMPLE_FRACTION

CASES = [
    (Linear(1, 1), (1, 1)),
    (Linear(5, 3), (7, 5)),
    (Linear(13, 17), (1, 13)),
    (Linear(784, 10), (32, 784)),
    (Conv2d(1, 1, 3), (1, 1, 5, 5)),
    (Conv2d(3, 4, 3, stride=2, padding=1), (2, 3, 9, 7)),
    (Conv2d(2, 5, 5, padding=2), (3, 2, 8, 8)),
    (Conv2d(1, 2, 2, stride=3), (2, 1, 11, 10)),
    (Conv2d(2, 3, 4, stride=2, padding=3), (1, 2, 5, 6)),
    (Conv2d(3, 2, 1), (4, 3, 3, 3)),
    (Conv2d(1, 2, 7), (2, 1, 7, 7)),
    (MaxPool2d(2), (2, 3, 8, 8)),
    (MaxPool2d(2), (1, 1, 7, 5)),
    (MaxPool2d(3, stride=2), (1, 2, 9, 7)),
    (MaxPool2d(3, stride=1), (3, 1, 5, 6)),
    (MaxPool2d(1), (2, 2, 3, 3)),
    (Flatten(), (2, 3, 4, 5)),
    (Flatten(), (1, 1, 1, 1)),
    (ReLU(), (5, 7)),
    (ReLU(), (1, 3, 4, 4)),
    (Sigmoid(), (5, 7)),
    (Sigmoid(), (1, 1)),
    (Tanh(), (5, 7)),
    (Tanh(), (2, 3, 1, 5)),
]


def case_id(value):
    """A short test id: the layer as spec.describe writes it, or the input shape as 2x3x4."""
    return spec.describe((value,)).replace(" ", "") if isinstance(value, spec.LAYERS) else "x".join(map(str, value))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("layer, x_shape", CASES, ids=case_id)
def test_layer_agrees(layer, x_shape, dtype):
    check((layer,), x_shape, dtype)


class ManualMask(nn.Module):
    """x * the mask the manual Dropout layer drew on its last forward: torch autograd through the same mask."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return x * torch.tensor(self.layer.mask)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_dropout_eval_is_the_identity_like_torch(dtype):
    net, mod = pair((Dropout(0.5),), dtype)
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(dtype)
    rows = upstream(net.eval(), mod.eval(), x)
    assert_rows(rows)
    assert np.array_equal(net.forward(x), x)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_train_agrees_through_its_mask(p, dtype):
    net, _ = pair((Dropout(p),), dtype)
    x = np.random.default_rng(1).standard_normal((3, 2, 5, 4)).astype(dtype)
    assert_rows(upstream(net, ManualMask(net.layers[0]), x))


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_scales_kept_units_like_torch(p):
    net, mod = pair((Dropout(p),), "float64", seed=3)
    x = np.random.default_rng(2).uniform(1, 2, (400, 500))          # no zeros: out / x is the mask
    ours = net.forward(x) / x
    torch.manual_seed(3)
    theirs = (mod.train()(torch.tensor(x)) / torch.tensor(x)).numpy()
    for mask in (ours, theirs):
        assert set(np.unique(mask).round(12)) == {0.0, round(1 / (1 - p), 12)}
        assert abs((mask == 0).mean() - p) < SAMPLE_FRACTION


def loss_rows(ours, theirs, out, target, reduction):
    """Rows for the loss value and d loss / d out: a manual loss against torch.nn.functional's."""
    tol = TOLERANCES[out.dtype.name]
    value, dout = ours(out.copy(), target, reduction=reduction)
    out_t = torch.tensor(out, requires_grad=True)
    ref = theirs(out_t, torch.tensor(target), reduction=reduction)
    ref.backward()
    return [row("loss", np.float64(value), np.float64(ref.item()), **tol), row("dout", dout, out_t.grad, **tol)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("shape, scale", [((7, 10), 1.0), ((1, 10), 1.0), ((4, 2), 30.0), ((5, 3), 1000.0)])
def test_cross_entropy_agrees(shape, scale, reduction, dtype):
    rng = np.random.default_rng(shape)
    logits = (scale * rng.standard_normal(shape)).astype(dtype)         # scale 1000: log-sum-exp must not overflow
    y = rng.integers(0, shape[1], shape[0])
    assert_rows(loss_rows(losses.cross_entropy, F.cross_entropy, logits, y, reduction))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("shape", [(5, 3), (1, 1), (8, 10)])
def test_mse_agrees(shape, reduction, dtype):
    rng = np.random.default_rng(shape)
    out, target = rng.standard_normal((2, *shape)).astype(dtype)
    assert_rows(loss_rows(losses.mse, F.mse_loss, out, target, reduction))
