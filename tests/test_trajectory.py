"""manual.optim against torch.optim: same initial weights, same real MNIST batches, 200 steps in float64."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import manual
import torch_ref
from experiments import data
from manual import optim, spec
from manual.gradcheck import rel_error
from tests.tolerances import TRAJECTORY

pytestmark = pytest.mark.slow   # end to end: 200 training steps of both stacks on real MNIST, twelve times
STEPS = 200
LAYERS = spec.get("mlp", hidden=(32,))
OPTIMIZERS = {   # name: (manual class, torch class, keyword arguments both take)
    "sgd": (optim.SGD, torch.optim.SGD, dict(lr=0.05)),
    "momentum": (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
    "dampening": (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.3)),
    "nesterov": (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    "sgd-weight-decay": (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, weight_decay=5e-3)),
    "adam": (optim.Adam, torch.optim.Adam, dict(lr=1e-3)),
    "adam-weight-decay": (optim.Adam, torch.optim.Adam, dict(lr=2e-3, betas=(0.8, 0.99), weight_decay=1e-2)),
}


@pytest.fixture(scope="module")
def mnist():
    """The first 2,000 real MNIST training images, float64 (N, 784), and their labels."""
    return data.load("train", dtype="float64", limit=2000)


def run(optimizer, batches, reduction):
    """Train the manual and torch nets side by side; ((initial, manual, torch) state dicts, manual losses)."""
    ours_cls, theirs_cls, kwargs = OPTIMIZERS[optimizer]
    net = manual.build(LAYERS, seed=5)
    mod = torch_ref.build(LAYERS)
    initial = net.state_dict()
    mod.load_state_dict(torch_ref.from_numpy(initial))
    ours = ours_cls(net.params, **kwargs)
    theirs = theirs_cls(mod.parameters(), foreach=False, **kwargs)
    losses = []
    for xb, yb in batches:
        loss, grads = net.loss_and_grads(xb, yb, reduction=reduction)
        ours.step(grads)
        losses.append(loss)
        theirs.zero_grad()
        F.cross_entropy(mod(torch.tensor(xb)), torch.tensor(yb), reduction=reduction).backward()
        theirs.step()
    assert len(losses) == STEPS
    return (initial, net.state_dict(), torch_ref.to_numpy(mod.state_dict())), losses


def minibatches(x, y, batch_size):
    """The first STEPS seeded batches of data.batches, epoch after epoch."""
    epochs = (data.batches(x, y, batch_size, seed=0, epoch=e) for e in range(STEPS))
    stream = (batch for epoch in epochs for batch in epoch)
    return [next(stream) for _ in range(STEPS)]


def assert_same_trajectory(states, losses):
    """Both end at the same parameters (rel_error <= TRAJECTORY), having moved well away from the start."""
    initial, ours, theirs = states
    errors = {name: rel_error(ours[name], theirs[name]) for name in ours}
    assert max(errors.values()) <= TRAJECTORY, errors
    assert min(rel_error(ours[name], initial[name]) for name in ours) > 1e-3
    assert np.mean(losses[-20:]) < np.mean(losses[:20])


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_minibatch_trajectories_agree(mnist, optimizer):
    assert_same_trajectory(*run(optimizer, minibatches(*mnist, 32), "mean"))


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_stochastic_gradient_descent_batch_one_agrees(mnist, optimizer):
    assert_same_trajectory(*run(optimizer, minibatches(*mnist, 1), "sum"))


@pytest.mark.parametrize("optimizer", ["sgd", "nesterov", "adam"])
def test_full_batch_gradient_descent_agrees(mnist, optimizer):
    x, y = mnist
    assert_same_trajectory(*run(optimizer, [(x[:128], y[:128])] * STEPS, "mean"))
