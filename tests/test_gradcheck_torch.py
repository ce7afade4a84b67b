"""manual.gradcheck and torch.autograd.gradcheck agree on the same functions, and both reject a wrong gradient."""
import numpy as np
import pytest
import torch

from experiments.agreement import pair
from manual import spec
from manual.gradcheck import check, numerical_gradient
from tests.random_arch import inputs
from tests.tolerances import FINITE_DIFF, TORCH_GRADCHECK

NETS = {
    "mlp-tanh": ((spec.Linear(6, 5), spec.Tanh(), spec.Linear(5, 3), spec.Sigmoid()), (4, 6)),
    "conv-pool": ((spec.Conv2d(1, 2, 3, padding=1), spec.Tanh(), spec.MaxPool2d(2), spec.Flatten(),
                   spec.Linear(18, 3)), (2, 1, 6, 6)),
    "chain": (spec.get("chain", depth=4), (5, 1)),
}


def setup(name, seed=0):
    """The manual net, its torch twin with the same weights, and a float64 input."""
    arch, shape = NETS[name]
    net, mod = pair(arch, "float64", seed)
    return net, mod, inputs(shape, seed)


def run(net, x, params):
    """The manual forward at these parameter values (tensors), as a tensor."""
    net.load_state_dict({k: p.detach().numpy().copy() for k, p in zip(net.params, params)})
    return torch.tensor(net.forward(x.detach().numpy()))


class Manual(torch.autograd.Function):
    """A manual net as a torch function of (x, *params); backward is the manual backward (scaled, to plant a bug)."""

    @staticmethod
    def forward(ctx, net, scale, x, *params):
        ctx.net, ctx.scale = net, scale
        ctx.save_for_backward(x, *params)
        return run(net, x, params)

    @staticmethod
    def backward(ctx, dout):
        x, *params = ctx.saved_tensors
        run(ctx.net, x, params)                                     # gradcheck ran other forwards since
        dx = ctx.net.backward(dout.numpy().copy())
        grads = [torch.tensor(ctx.scale * g) for g in ctx.net.grads().values()]
        return None, None, torch.tensor(ctx.scale * dx), *grads


class Numerical(torch.autograd.Function):
    """A manual net as a torch function of x whose backward is manual.gradcheck's finite-difference J^T v."""

    @staticmethod
    def forward(ctx, net, x):
        ctx.net = net
        ctx.save_for_backward(x)
        return torch.tensor(net.forward(x.detach().numpy()))

    @staticmethod
    def backward(ctx, v):
        x = ctx.saved_tensors[0].numpy().copy()
        v = v.numpy()
        return None, torch.tensor(numerical_gradient(lambda: float(np.sum(ctx.net.forward(x) * v)), x))


def torch_inputs(net, x):
    """x and the net's parameters as float64 leaf tensors that require grad."""
    return (torch.tensor(x, requires_grad=True),
            *(torch.tensor(p, requires_grad=True) for p in net.params.values()))


@pytest.mark.parametrize("name", NETS)
def test_torch_gradcheck_accepts_the_manual_backward(name):
    net, _, x = setup(name)
    assert torch.autograd.gradcheck(lambda *t: Manual.apply(net, 1.0, *t), torch_inputs(net, x), **TORCH_GRADCHECK)


@pytest.mark.parametrize("name", NETS)
def test_torch_gradcheck_accepts_manual_finite_differences(name):
    net, _, x = setup(name)
    assert torch.autograd.gradcheck(lambda t: Numerical.apply(net, t), torch_inputs(net, x)[:1],
                                    **TORCH_GRADCHECK)


def torch_pieces(mod):
    """forward / backward / params / grads of a torch module in the form manual.gradcheck.check takes."""
    cache = {}

    def forward(x):
        cache["x"] = torch.from_numpy(x).requires_grad_()
        cache["out"] = mod(cache["x"])
        return cache["out"].detach().numpy()

    def backward(dout):
        mod.zero_grad()
        cache["out"].backward(torch.from_numpy(dout))
        return cache["x"].grad.numpy()

    params = {k: p.detach().numpy() for k, p in mod.named_parameters()}   # live: share memory with mod
    return forward, backward, params, lambda: {k: p.grad.numpy() for k, p in mod.named_parameters()}


@pytest.mark.parametrize("name", NETS)
def test_manual_gradcheck_accepts_torch_autograd(name):
    _, mod, x = setup(name)
    forward, backward, params, grads = torch_pieces(mod)
    errors = check(forward, backward, x, params, grads)
    assert set(errors) == {"input", *mod.state_dict()} and max(errors.values()) <= FINITE_DIFF


@pytest.mark.parametrize("name", NETS)
def test_both_reject_a_gradient_off_by_a_tenth_of_a_percent(name):
    net, _, x = setup(name)
    assert not torch.autograd.gradcheck(lambda *t: Manual.apply(net, 1.001, *t), torch_inputs(net, x),
                                        raise_exception=False, **TORCH_GRADCHECK)
    errors = check(net.forward, lambda dout: 1.001 * net.backward(dout), x, net.params, net.grads)
    assert errors["input"] > FINITE_DIFF
