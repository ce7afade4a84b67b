"""Manual backprop vs torch autograd on the same spec, weights and inputs: one row per compared tensor.

Run `python -m experiments.compare --help` for the report; tests call pair / upstream / compare directly.
"""
import argparse
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

import manual
import torch_ref
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
    rel: float               # relative(): max|manual - torch| / max(|manual| + |torch|)
    ok: bool                 # same dtype, |manual - torch| <= atol + rtol * |torch| everywhere, rel <= rtol

    def message(self):
        """One line naming the tensor, its shape, the largest difference and where it is."""
        dtype = "" if self.dtypes[0] == self.dtypes[1] else f", dtype {self.dtypes[0]} (torch {self.dtypes[1]})"
        return (f"{self.name} {self.shape}: max abs diff {self.max_abs:.3e} at {self.where} "
                f"(manual {self.values[0]!r}, torch {self.values[1]!r}), rel error {self.rel:.3e}{dtype}")


def relative(a, b):
    """max|a - b| / max(|a| + |b|) without gradcheck.rel_error's 1e-8 floor, so vanishing gradients count too."""
    scale = float(np.max(np.abs(a) + np.abs(b), initial=0.0))
    return 0.0 if scale == 0 else float(np.max(np.abs(a - b))) / scale


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
    rel = relative(a, b)
    return Row(name, ours.shape, (ours.dtype.name, theirs.dtype.name), float(diff.max(initial=0.0)), where,
               values, rel, within and rel <= rtol and ours.dtype == theirs.dtype)


def pair(layers, dtype="float64", seed=0):
    """A manual net (torch-default init, seeded) and a torch copy holding the same weights."""
    net = manual.build(layers, init="torch_default", seed=seed, dtype=dtype)
    mod = torch_ref.build(layers, dtype)
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
    xt = torch.tensor(x, requires_grad=True)
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


def upstream(net, mod, x, seed=0):
    """agree() with a random upstream gradient dout: the scalar is (out * dout).sum(), never a plain sum."""
    def head(out):
        dout = np.random.default_rng(seed).standard_normal(out.shape).astype(x.dtype)
        return None, dout, lambda out_t: (out_t * torch.tensor(dout)).sum()
    return agree(net, mod, x, head)


def with_loss(net, mod, x, target, loss="cross_entropy", reduction="sum"):
    """agree() through a loss: manual losses.<loss> against torch.nn.functional's."""
    ours, theirs = LOSSES[loss]

    def head(out):
        value, dout = ours(out, target, reduction=reduction)
        return value, dout, lambda out_t: theirs(out_t, torch.tensor(target), reduction=reduction)
    return agree(net, mod, x, head)


def input_shape(layers, batch_size, image_size=28):
    """Input shape for a spec: (N, in_features) before a Linear, (N, C, size, size) before a Conv2d."""
    for layer in layers:
        if isinstance(layer, spec.Linear):
            return (batch_size, layer.in_features)
        if isinstance(layer, spec.Conv2d):
            return (batch_size, layer.in_channels, image_size, image_size)
    raise ValueError("the spec has no Linear or Conv2d layer to take the input shape from")


def outputs(layers):
    """Width of the output: the out_features of the last Linear."""
    widths = [layer.out_features for layer in layers if isinstance(layer, spec.Linear)]
    if not widths:
        raise ValueError("the spec has no Linear layer to produce outputs")
    return widths[-1]


def default_loss(layers):
    """cross_entropy for classifiers; mse when there is a single output (cross-entropy over one class is 0)."""
    return "mse" if outputs(layers) == 1 else "cross_entropy"


def compare(layers, dtype="float64", batch_size=8, reduction="sum", seed=0, loss=None):
    """Both nets from one spec and seed, random inputs and targets, rows through the loss."""
    layers = spec.validate(layers)
    loss = loss or default_loss(layers)
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
    net, mod = pair(layers, dtype, seed)
    rng = np.random.default_rng([seed, 1])
    x = rng.standard_normal(input_shape(layers, batch_size)).astype(dtype)
    if loss == "cross_entropy":
        target = rng.integers(0, outputs(layers), size=batch_size)                 # (N,) int64
    else:
        target = rng.standard_normal((batch_size, outputs(layers))).astype(dtype)  # (N, outputs)
    return with_loss(net, mod, x, target, loss, reduction)


def table(rows):
    """The rows as a fixed-width text table."""
    head = ("tensor", "shape", "max abs diff", "at", "rel error", "result")
    body = [(r.name, str(r.shape), f"{r.max_abs:.2e}", str(r.where), f"{r.rel:.2e}",
             "pass" if r.ok else "FAIL" + ("" if r.dtypes[0] == r.dtypes[1] else f" (dtype {r.dtypes[0]})"))
            for r in rows]
    widths = [max(len(line[i]) for line in (head, *body)) for i in range(len(head))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in (head, *body))


def _positive(text):
    """argparse type: a positive int."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {text}")
    return value


def _widths(text):
    """argparse type: comma-separated positive ints, e.g. 64,32 ('' for none)."""
    try:
        return tuple(_positive(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive ints, got {text!r}") from None


def parser():
    """The command-line interface."""
    p = argparse.ArgumentParser(
        prog="python -m experiments.compare",
        description="Compare the manual NumPy backward pass with torch autograd on one architecture: same spec, "
                    "same weights (manual torch-default init, copied into torch), same random inputs. Prints one "
                    "row per tensor (output, loss, input gradient, every parameter gradient) and exits 1 if any "
                    "differs by more than atol + rtol * |torch| anywhere or has a relative error "
                    "max|a - b| / max(|a| + |b|) above rtol (no floor: a vanishing gradient must agree to rtol of "
                    "its own size); float64: rtol 1e-10, atol 1e-12; float32: rtol 1e-4, atol 1e-5.")
    p.add_argument("--arch", default="lenet", choices=sorted(spec.ARCHITECTURES),
                   help="named architecture from manual.spec (default: lenet)")
    p.add_argument("--hidden", type=_widths, help="mlp only: hidden widths, comma-separated, e.g. 64,32")
    p.add_argument("--activation", choices=sorted(spec.ACTIVATIONS),
                   help="chain and mlp only: the activation (defaults: sigmoid for chain, relu for mlp)")
    p.add_argument("--depth", type=_positive, help="chain only: number of Linear(1, 1)+activation blocks (default 8)")
    p.add_argument("--dtype", default="float64", choices=sorted(TOLERANCES),
                   help="dtype of weights, inputs and both computations; sets the tolerance (default: float64)")
    p.add_argument("--batch-size", type=_positive, default=8, help="number of random inputs (default: 8)")
    p.add_argument("--reduction", default="sum", choices=("sum", "mean"),
                   help="loss reduction over the batch: sum (the notes' L(W)) or mean (default: sum)")
    p.add_argument("--loss", choices=sorted(LOSSES),
                   help="default: cross_entropy against random labels, or mse against random targets when the "
                        "net has a single output (chain), where cross-entropy is identically 0")
    p.add_argument("--seed", type=int, default=0, help="seeds the weights, inputs and targets (default: 0)")
    return p


def main(argv=None):
    """Print the comparison table; return 1 if any tensor disagrees."""
    p = parser()
    args = p.parse_args(argv)
    options = {k: v for k, v in (("hidden", args.hidden), ("activation", args.activation), ("depth", args.depth))
               if v is not None}
    try:
        layers = spec.get(args.arch, **options)
    except ValueError as e:
        p.error(str(e))
    loss = args.loss or default_loss(layers)
    rows = compare(layers, args.dtype, args.batch_size, args.reduction, args.seed, loss)
    tol = TOLERANCES[args.dtype]
    print(f"{args.arch}: {spec.describe(layers)}")
    print(f"{args.dtype}, batch {args.batch_size}, {loss} ({args.reduction}), seed {args.seed}; "
          f"pass: |manual - torch| <= {tol['atol']:g} + {tol['rtol']:g} * |torch| everywhere "
          f"and rel error <= {tol['rtol']:g}\n")
    print(table(rows))
    failed = [r for r in rows if not r.ok]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} tensors agree" + (f", {len(failed)} FAIL" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
