"""The agreement engine: manual backprop vs torch autograd on the same arch, weights and inputs, one row per tensor.

`python -m experiments.compare` prints its table; the tests call pair / upstream / compare directly.
"""
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

import manual
import torch_ref
from experiments.relative import relative_no_floor
from experiments.tolerances import AGREE_F32, AGREE_F64
from manual import losses, spec

TOLERANCES = {"float32": AGREE_F32, "float64": AGREE_F64}
LOSSES = {"cross_entropy": (losses.cross_entropy, F.cross_entropy), "mse": (losses.mse, F.mse_loss)}


@dataclass(frozen=True)
class Row:
    """One tensor compared: manual against torch."""
    name: str
    shape: tuple
    dtypes: tuple            # (manual dtype, torch dtype) as names
    max_abs: float           # largest |manual - torch|
    where: tuple             # its index
    values: tuple            # (manual, torch) at that index
    rel: float               # relative_no_floor(): max|manual - torch| / max(|manual| + |torch|)
    ok: bool                 # same dtype, |manual - torch| <= atol + rtol * |torch| everywhere, rel <= rtol

    def message(self):
        """One line naming the tensor, its shape, the largest difference and where it is."""
        dtype = "" if self.dtypes[0] == self.dtypes[1] else f", dtype {self.dtypes[0]} (torch {self.dtypes[1]})"
        return (f"{self.name} {self.shape}: max abs diff {self.max_abs:.3e} at {self.where} "
                f"(manual {self.values[0]!r}, torch {self.values[1]!r}), rel error {self.rel:.3e}{dtype}")


def row(name, ours, theirs, rtol, atol):
    """Compare one manual array with the torch one (tensor or array) elementwise."""
    ours = np.asarray(ours)
    theirs = theirs.detach().cpu().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    if ours.shape != theirs.shape:
        raise ValueError(f"{name}: manual shape {ours.shape} != torch shape {theirs.shape}")
    a, b = ours.astype(np.float64), theirs.astype(np.float64)
    diff = np.abs(a - b)
    where = tuple(int(i) for i in np.unravel_index(np.argmax(diff), diff.shape)) if diff.size else ()
    within = bool(np.all(diff <= atol + rtol * np.abs(b)))
    values = (float(a[where]), float(b[where])) if diff.size else (0.0, 0.0)
    rel = relative_no_floor(a, b)
    return Row(name, ours.shape, (ours.dtype.name, theirs.dtype.name), float(diff.max(initial=0.0)), where,
               values, rel, within and rel <= rtol and ours.dtype == theirs.dtype)


def pair(arch, dtype="float64", seed=0, device="cpu"):
    """A manual net (torch-default init, seeded) and a torch copy on device holding the same weights."""
    net = manual.build(arch, init="torch_default", seed=seed, dtype=dtype)
    mod = torch_ref.build(arch, dtype).to(device)
    mod.load_state_dict(torch_ref.from_numpy(net.state_dict()))
    return net, mod


def agree(net, mod, x, head):
    """Forward and backward both; rows for output, [loss,] input grad and every parameter grad.

    head(out) -> (manual loss or None, dout, torch_head); torch_head(out_t) is the scalar torch backpropagates.
    """
    tol = TOLERANCES[x.dtype.name]
    out = net.forward(x)
    loss, dout, torch_head = head(out)
    dx = net.backward(dout)
    grads = net.grads()
    xt = torch.tensor(x, device=device_of(mod), requires_grad=True)
    out_t = mod(xt)
    scalar = torch_head(out_t)
    scalar.backward()
    named = dict(mod.named_parameters())
    if set(grads) != set(named):
        raise ValueError(f"manual grads {sorted(grads)} != torch parameters {sorted(named)}")
    rows = [row("output", out, out_t, **tol)]
    if loss is not None:
        rows.append(row("loss", np.float64(loss), np.float64(scalar.item()), **tol))
    rows.append(row("input.grad", dx, xt.grad, **tol))
    rows += [row(f"{name}.grad", grads[name], p.grad, **tol) for name, p in named.items()]
    return rows


def device_of(mod):
    """The device a torch module's parameters live on (the CPU for a module without parameters)."""
    return next(mod.parameters(), torch.empty(0)).device


def upstream(net, mod, x, seed=0):
    """agree() with a random upstream gradient dout: the scalar is (out * dout).sum(), never a plain sum."""
    def head(out):
        dout = np.random.default_rng(seed).standard_normal(out.shape).astype(x.dtype)
        return None, dout, lambda out_t: (out_t * torch.tensor(dout, device=out_t.device)).sum()
    return agree(net, mod, x, head)


def with_loss(net, mod, x, target, loss="cross_entropy", reduction="sum"):
    """agree() through a loss: manual losses.<loss> against torch.nn.functional's."""
    ours, theirs = LOSSES[loss]

    def head(out):
        value, dout = ours(out, target, reduction=reduction)
        return value, dout, lambda out_t: theirs(out_t, torch.tensor(target, device=out_t.device),
                                                 reduction=reduction)
    return agree(net, mod, x, head)


def gradient_error(arch, state, x, y, reduction):
    """The largest relative error (relative_no_floor) between manual and autograd parameter gradients of the
    cross-entropy on (x, y) at the weights state: both nets loaded with state, in eval mode (no dropout)."""
    dtype = x.dtype.name
    net = manual.build(arch, init="zeros", dtype=dtype).eval()
    net.load_state_dict(state)
    mod = torch_ref.build(arch, dtype=dtype).eval()
    mod.load_state_dict(torch_ref.from_numpy(state))
    rows = with_loss(net, mod, x, y, reduction=reduction)
    return max(r.rel for r in rows if r.name.endswith(".grad") and r.name != "input.grad")


def input_shape(arch, batch_size, image_size=28):
    """Input shape for an arch: (N, in_features) before a Linear, (N, C, size, size) before a Conv2d."""
    for layer in arch:
        if isinstance(layer, spec.Linear):
            return (batch_size, layer.in_features)
        if isinstance(layer, spec.Conv2d):
            return (batch_size, layer.in_channels, image_size, image_size)
    raise ValueError("the arch has no Linear or Conv2d layer to take the input shape from")


def outputs(arch):
    """Width of the output: the out_features of the last Linear."""
    widths = [layer.out_features for layer in arch if isinstance(layer, spec.Linear)]
    if not widths:
        raise ValueError("the arch has no Linear layer to produce outputs")
    return widths[-1]


def default_loss(arch):
    """cross_entropy for classifiers; mse when there is a single output (cross-entropy over one class is 0)."""
    return "mse" if outputs(arch) == 1 else "cross_entropy"


def compare(arch, dtype="float64", batch_size=8, reduction="sum", seed=0, loss=None, device="cpu"):
    """Both nets from one arch and seed (torch's on device), random inputs and targets, rows through the loss."""
    arch = spec.validate(arch)
    loss = loss or default_loss(arch)
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
    net, mod = pair(arch, dtype, seed, device)
    rng = np.random.default_rng([seed, 1])
    x = rng.standard_normal(input_shape(arch, batch_size)).astype(dtype)
    if loss == "cross_entropy":
        target = rng.integers(0, outputs(arch), size=batch_size)                 # (N,) int64
    else:
        target = rng.standard_normal((batch_size, outputs(arch))).astype(dtype)  # (N, outputs)
    return with_loss(net, mod, x, target, loss, reduction)


def table(rows):
    """The rows as a fixed-width text table."""
    head = ("tensor", "shape", "max abs diff", "at", "rel error", "result")
    body = [(r.name, str(r.shape), f"{r.max_abs:.2e}", str(r.where), f"{r.rel:.2e}",
             "pass" if r.ok else "FAIL" + ("" if r.dtypes[0] == r.dtypes[1] else f" (dtype {r.dtypes[0]})"))
            for r in rows]
    widths = [max(len(line[i]) for line in (head, *body)) for i in range(len(head))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in (head, *body))
