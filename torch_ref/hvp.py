"""Hessian-vector products of a torch module's loss, two ways: double backward and forward-over-reverse (torch.func)."""
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, jvp, vjp

from torch_ref.build import build, from_numpy



def _mse(out, target, reduction="mean"):
    """F.mse_loss, its mean taken as sum / numel: torch.func's jvp of grad of reduction="mean" raises
    "ZeroTensors are immutable" (torch 2.14), the sum's does not."""
    total = F.mse_loss(out, target, reduction="sum")
    return total / out.numel() if reduction == "mean" else total


LOSSES = {"cross_entropy": F.cross_entropy, "mse": _mse}


def _tensors(mod, x, y, v):
    """x, y and v as torch tensors, v keyed and ordered like mod's named parameters."""
    names = [name for name, _ in mod.named_parameters()]
    if set(v) != set(names):
        raise ValueError(f"direction mismatch: missing {sorted(set(names) - set(v))}, unexpected {sorted(set(v) - set(names))}")
    v = from_numpy(v)
    return torch.as_tensor(x), torch.as_tensor(y), {name: v[name] for name in names}


def _loss_of(mod, x, y, loss, reduction):
    """params dict -> scalar loss of mod on (x, y) with those parameters."""
    def of(params):
        return LOSSES[loss](functional_call(mod, params, (x,)), y, reduction=reduction)
    return of


def _numpy(tensors):
    """{name: tensor} -> {name: ndarray copy}."""
    return {name: t.detach().cpu().numpy().copy() for name, t in tensors.items()}


def double_backward(mod, x, y, v, loss="cross_entropy", reduction="sum"):
    """H v by reverse-over-reverse: the gradient with create_graph=True, then the gradient of <gradient, v>."""
    x, y, v = _tensors(mod, x, y, v)
    params = [p for _, p in mod.named_parameters()]
    value = LOSSES[loss](mod(x), y, reduction=reduction)
    g = torch.autograd.grad(value, params, create_graph=True)
    hv = torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(g, v.values())), params)
    return _numpy(dict(zip(v, hv)))


def forward_over_reverse(mod, x, y, v, loss="cross_entropy", reduction="sum"):
    """H v by forward-over-reverse: torch.func.jvp of torch.func.grad of the loss, along v."""
    x, y, v = _tensors(mod, x, y, v)
    params = {name: p.detach() for name, p in mod.named_parameters()}
    return _numpy(jvp(grad(_loss_of(mod, x, y, loss, reduction)), (params,), (v,))[1])


def gauss_newton(mod, x, y, v, loss="cross_entropy", reduction="sum"):
    """J^T H_loss J v: J v by jvp of the output, H_loss by double backward of the loss in the output, J^T by vjp."""
    x, y, v = _tensors(mod, x, y, v)
    params = {name: p.detach() for name, p in mod.named_parameters()}
    out, pullback = vjp(lambda p: functional_call(mod, p, (x,)), params)
    jv = jvp(lambda p: functional_call(mod, p, (x,)), (params,), (v,))[1]
    hjv = jvp(grad(lambda o: LOSSES[loss](o, y, reduction=reduction)), (out,), (jv,))[1]
    return _numpy(pullback(hjv)[0])


METHODS = {"double_backward": double_backward, "forward_over_reverse": forward_over_reverse}


def product(layers, state, x, y, loss="cross_entropy", reduction="mean", dtype="float64", device="cpu"):
    """An hvp callable ({name: ndarray} -> {name: ndarray}, NumPy on the CPU) by double backward of
    torch_ref.build(layers) at state on (x, y), computed on device: the gradient's graph is built once and each
    product backpropagates through it again."""
    mod = build(layers, dtype=dtype).eval().to(device)
    mod.load_state_dict(from_numpy(state))
    names, params = zip(*mod.named_parameters())
    value = LOSSES[loss](mod(torch.as_tensor(x, device=device)), torch.as_tensor(y, device=device),
                         reduction=reduction)
    g = torch.autograd.grad(value, params, create_graph=True)

    def hvp(v):
        v = tuple(t.to(device) for t in _tensors(mod, x, y, v)[2].values())
        return _numpy(dict(zip(names, torch.autograd.grad(g, params, grad_outputs=v, retain_graph=True))))
    return hvp
