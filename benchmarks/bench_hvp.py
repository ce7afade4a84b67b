"""Hessian-vector products on `mlp`: one manual H v against torch's double backward, torch.func's
forward-over-reverse and one manual gradient, on the same MNIST batch, float32 and float64; then λ_max on
10,000 images by eigsh with each backend's products (wall time and product count).

Medians of alternating repeats, printed side by side with ratios (targets: manual H v <= 1.0x torch's double
backward and <= 2.5x one manual gradient). Needs MNIST ($BACKPROP_LAB_DATA or ./data; `make data` fetches it).
"""
import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from scipy.sparse.linalg import eigsh
from torch.func import functional_call, grad, jvp

import manual
import torch_ref
from experiments.data import load
from experiments.landscape import curvature
from machine import measured
from manual import spec


def torch_routes(mod, x, y, v, reduction):
    """{"torch double backward": f, "torch.func": f}: each f() one H v on prepared tensors."""
    params = [p for _, p in mod.named_parameters()]
    detached = {name: p.detach() for name, p in mod.named_parameters()}
    tangents = {name: t for name, t in zip(detached, v)}

    def double_backward():
        g = torch.autograd.grad(F.cross_entropy(mod(x), y, reduction=reduction), params, create_graph=True)
        return torch.autograd.grad(g, params, grad_outputs=v)

    def loss_of(p):
        return F.cross_entropy(functional_call(mod, p, (x,)), y, reduction=reduction)

    return {"torch double backward": double_backward,
            "torch.func jvp(grad)": lambda: jvp(grad(loss_of), (detached,), (tangents,))[1]}


def time_alternating(functions, repeats):
    """{name: median seconds} over `repeats` rounds, each round calling every function once in turn."""
    for f in functions.values():
        f()                                                         # warm-up
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, f in functions.items():
            start = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def one_product(dtype, images, repeats, reduction):
    """Median times of one H v (three ways) and one manual gradient on `images` MNIST images."""
    arch = spec.get("mlp")
    x, y = load("train", dtype=dtype, limit=images)
    net = manual.build(arch, seed=0, dtype=dtype)
    mod = torch_ref.build(arch, dtype=dtype)
    mod.load_state_dict(torch_ref.from_numpy(net.state_dict()))
    rng = np.random.default_rng(1)
    v = {k: rng.standard_normal(p.shape).astype(dtype) for k, p in net.params.items()}
    vt = tuple(torch.from_numpy(a) for a in v.values())
    functions = {"manual H v": lambda: net.hvp(x, y, v, reduction=reduction),
                 **torch_routes(mod, torch.from_numpy(x), torch.from_numpy(y), vt, reduction),
                 "manual gradient": lambda: net.loss_and_grads(x, y, reduction)}
    return time_alternating(functions, repeats)


def lambda_max(images, tol):
    """(seconds, products, λ_max) of eigsh for mlp's largest Hessian eigenvalue on `images` images, per backend."""
    arch = spec.get("mlp")
    x, y = load("train", dtype="float64", limit=images)
    state = manual.build(arch, seed=0).state_dict()
    out = {}
    for backend in curvature.BACKENDS:
        start = time.perf_counter()
        op = curvature.operator(backend, arch, state, x, y)
        top = eigsh(op, k=1, which="LA", v0=np.random.default_rng(0).standard_normal(op.shape[0]),
                    tol=tol, return_eigenvectors=False)
        out[backend] = (time.perf_counter() - start, op.products, float(top[0]))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=1000, help="batch for one product (default 1000)")
    p.add_argument("--repeats", type=int, default=7, help="alternating rounds; medians are printed (default 7)")
    p.add_argument("--reduction", choices=("sum", "mean"), default="mean", help="cross-entropy reduction (default mean)")
    p.add_argument("--eig-images", type=int, default=10000, help="images for λ_max by eigsh; 0 skips it (default 10000)")
    p.add_argument("--eig-tol", type=float, default=1e-4, help="eigsh's relative tolerance (default 1e-4)")
    args = p.parse_args()
    with measured("bench_hvp"):
        print(f"torch threads {torch.get_num_threads()}; mlp, {args.images} MNIST images, {args.reduction} cross-entropy, "
              f"medians of {args.repeats}")
        for dtype in ("float32", "float64"):
            t = one_product(dtype, args.images, args.repeats, args.reduction)
            base, grad_time = t["torch double backward"], t["manual gradient"]
            print(f"\n{dtype}:")
            for name, seconds in t.items():
                print(f"  {name:24s} {seconds * 1e3:8.2f} ms   {seconds / base:5.2f}x torch double backward   "
                      f"{seconds / grad_time:5.2f}x manual gradient")
        if args.eig_images:
            print(f"\nλ_max of mlp (seed-0 init) on {args.eig_images} images, eigsh which='LA', tol {args.eig_tol}, float64:")
            for backend, (seconds, products, value) in lambda_max(args.eig_images, args.eig_tol).items():
                print(f"  {backend:7s} {seconds:7.2f} s  {products:4d} products  λ_max = {value:.10g}")


if __name__ == "__main__":
    main()
