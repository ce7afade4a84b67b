"""How λ_max of mlp's Hessian varies across disjoint example subsets of one size: 128 vs 1,000 vs 10,000 images.

mlp (kaiming_normal, seed 0) trained for one epoch of manual SGD (lr 0.01, momentum 0.9, batch 128, float32) on the
60,000 training images; then λ_max of the mean cross-entropy's Hessian (manual Hessian-vector products, eigsh
which='LA', tol 1e-3, float64) on 5 disjoint training subsets per size. Prints mean ± std and std / mean per size.
"""
import argparse
import time

import numpy as np
from scipy.sparse.linalg import eigsh

import manual
from experiments.data import batches, load
from experiments.landscape import curvature
from machine import measured
from manual import spec
from manual.optim import SGD


def trained_mlp(x, y):
    """mlp after one epoch of SGD with momentum, as a float64 state dict."""
    net = manual.build(spec.get("mlp"), init="kaiming_normal", seed=0, dtype="float32")
    opt = SGD(net.params, lr=0.01, momentum=0.9)
    for xb, yb in batches(x, y, 128, seed=0):
        opt.step(net.loss_and_grads(xb, yb, reduction="mean")[1])
    return {k: a.astype(np.float64) for k, a in net.state_dict().items()}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", type=int, default=[128, 1000, 10_000], help="subset sizes (default: 128 1000 10000)")
    p.add_argument("--subsets", type=int, default=5, help="disjoint subsets per size (default: 5)")
    args = p.parse_args()
    with measured("curvature_spread"):
        x, y = load("train", dtype="float32")
        state = trained_mlp(x, y)
        x64, perm = x.astype(np.float64), np.random.default_rng(0).permutation(len(x))
        for size in args.sizes:
            start, values = time.perf_counter(), []
            for i in range(args.subsets):
                idx = perm[i * size:(i + 1) * size]
                op = curvature.operator("manual", spec.get("mlp"), state, x64[idx], y[idx])
                v0 = np.random.default_rng(i).standard_normal(op.shape[0])
                values.append(float(eigsh(op, k=1, which="LA", v0=v0, tol=1e-3, return_eigenvectors=False)[0]))
            mean, std = np.mean(values), np.std(values, ddof=1)
            print(f"{size:6d} images: lambda_max {mean:.2f} ± {std:.2f} (std / mean {std / mean:.1%}) over "
                  f"{args.subsets} subsets; {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
