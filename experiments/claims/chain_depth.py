"""Vanishing gradients in the notes' single-chain net (section 6): |dL/dw_i| per layer against the σ' bound,
for sigmoid, tanh and ReLU, the closed-form recursion checked against torch autograd in the same run, and
the gradient-descent steps a chain needs to reach a fixed loss as it gets deeper.

The task for every chain: N scalar inputs x on [-2, 2], target y = 0.5 + 0.25 tanh(x), loss L = mean (h_ℓ - y)^2,
so dL/dh_ℓ = 2 (h_ℓ - y) / N. Weights and biases start from torch's default for Linear(1, 1), U(-1, 1).
"""
import time
from dataclasses import dataclass

import numpy as np

import manual
from experiments.claims import harness
from experiments.relative import relative_elementwise
from manual import chain, spec

NAME = "chain_depth"
ACTIVATIONS = tuple(chain.CHAIN_ACTIVATIONS)   # sigmoid, tanh, relu
LR = {"sigmoid": 2.0, "tanh": 0.5, "relu": 0.5}   # plain gradient descent; sigmoid's σ' ≤ 1/4 gets a larger step
CURVE_EVERY = 10                                  # steps between the logged points of a training curve


@dataclass(frozen=True)
class Settings:
    grad_depths: tuple = tuple(range(2, 31))     # chains whose gradients are measured
    grad_seeds: int = 20                         # random chains per (activation, depth)
    train_depths: tuple = (2, 3, 4, 5, 6, 8, 10, 15, 20, 30)
    train_seeds: int = 3
    max_steps: int = 5000                        # a chain that has not reached the target by then counts as failed
    target: float = 0.5                          # reach L <= target * var(y): half the variance explained
    points: int = 32                             # N inputs


FULL = Settings()
QUICK = Settings(grad_depths=(2, 5, 10), grad_seeds=3, train_depths=(2, 3), train_seeds=2, max_steps=300)


def task(points):
    """(x, y), each (N,): the scalar regression every chain fits."""
    x = np.linspace(-2.0, 2.0, points)
    return x, 0.5 + 0.25 * np.tanh(x)


def initial(depth, activation, seed):
    """(w, b), each (ℓ,): torch's default Linear(1, 1) init, drawn by manual.build."""
    net = manual.build(spec.get("chain", depth=depth, activation=activation), seed=seed, dtype="float64")
    return chain.from_state_dict(net.state_dict())


def upstream(w, b, x, y, activation):
    """(L, dL/dh_ℓ (N,)) for the mean squared error."""
    h, _ = chain.forward(w, b, x, activation)
    residual = h[-1] - y                                  # (N,)
    return float(np.mean(residual ** 2)), 2 * residual / len(x)


def autograd_gradients(w, b, x, y, activation):
    """(dL/dw, dL/db), each (ℓ,), from torch autograd on torch_ref's chain with the same weights."""
    import torch
    import torch_ref

    module = torch_ref.build(spec.get("chain", depth=len(w), activation=activation), dtype="float64")
    module.load_state_dict(torch_ref.from_numpy(chain.to_state_dict(w, b)))
    out = module(torch.from_numpy(x[:, None]))            # (N, 1)
    torch.nn.functional.mse_loss(out[:, 0], torch.from_numpy(y)).backward()
    return chain.from_state_dict({name: p.grad.numpy() for name, p in module.named_parameters()})


def gradient_rows(settings):
    """One CSV row per (activation, depth, seed, layer): the closed form, its bound, autograd, their difference."""
    x, y = task(settings.points)
    rows = []
    for activation in ACTIVATIONS:
        for depth in settings.grad_depths:
            for seed in range(settings.grad_seeds):
                w, b = initial(depth, activation, seed)
                loss, dL_dhl = upstream(w, b, x, y, activation)
                dw, db, _ = chain.gradients(w, b, x, dL_dhl, activation)
                bound = chain.weight_gradient_bound(w, b, x, dL_dhl, activation)
                auto_w, auto_b = autograd_gradients(w, b, x, y, activation)
                diff = np.maximum(relative_elementwise(dw, auto_w), relative_elementwise(db, auto_b))
                for i in range(depth):
                    rows.append({"activation": activation, "depth": depth, "seed": seed, "layer": i + 1,
                                 "w": float(w[i]), "dL_dw": float(dw[i]), "bound": float(bound[i]),
                                 "autograd_dL_dw": float(auto_w[i]), "rel_diff": float(diff[i]), "loss": loss})
    return rows


def train(job):
    """Plain gradient descent with the closed-form gradients until L <= target or max_steps; one CSV row + curve."""
    activation, depth, seed, lr = job["activation"], job["depth"], job["seed"], job["lr"]
    x, y = task(job["points"])
    target = job["target"] * float(np.var(y))
    w, b = initial(depth, activation, seed)
    curve, steps, start = [], 0, time.perf_counter()
    loss, dL_dhl = upstream(w, b, x, y, activation)
    while loss > target and steps < job["max_steps"] and np.isfinite(loss):
        if steps % CURVE_EVERY == 0:
            curve.append((steps, loss))
        dw, db, _ = chain.gradients(w, b, x, dL_dhl, activation)
        w, b = w - lr * dw, b - lr * db
        steps += 1
        loss, dL_dhl = upstream(w, b, x, y, activation)
    curve.append((steps, loss))
    row = {"activation": activation, "depth": depth, "seed": seed, "lr": lr, "reached": bool(loss <= target),
           "steps": steps, "final_loss": loss, "target_loss": target, "seconds": time.perf_counter() - start}
    return row, curve


def training_jobs(settings):
    return [{"activation": a, "depth": d, "seed": s, "lr": LR[a], "points": settings.points,
             "target": settings.target, "max_steps": settings.max_steps}
            for a in ACTIVATIONS for d in settings.train_depths for s in range(settings.train_seeds)]


def per_layer(rows, value="dL_dw"):
    """{(activation, depth, layer): |value| over the seeds, (seeds,)}."""
    out = {}
    for r in rows:
        out.setdefault((r["activation"], r["depth"], r["layer"]), []).append(abs(r[value]))
    return {key: np.array(v) for key, v in out.items()}


def dead_fraction(grads, activation, depth):
    """The fraction of seeds whose dL/dw_1 is exactly 0: a ReLU unit above it is off for every input."""
    return float(np.mean(grads[activation, depth, 1] == 0))


def median_nonzero(values, where=None):
    """Median of values where `where` (default: values) is non-zero: dead ReLU units give exact zeros; nan if none."""
    alive = values[(values if where is None else where) != 0]
    return float(np.median(alive)) if len(alive) else float("nan")


def plot_per_layer(grads, bounds, settings, out, w):
    """|dL/dw_i| against layer i for a few depths, solid, and the bound, dashed; one panel per activation."""
    fig, axes = harness.figure(cols=len(ACTIVATIONS))
    shown = sorted({settings.grad_depths[0], *[d for d in (5, 10, 20, 30) if d in settings.grad_depths],
                    settings.grad_depths[-1]})
    for ax, activation in zip(axes, ACTIVATIONS):
        for k, depth in enumerate(shown):
            layers = np.arange(1, depth + 1)
            grad = [median_nonzero(grads[activation, depth, i]) for i in layers]
            bound = [median_nonzero(bounds[activation, depth, i], grads[activation, depth, i]) for i in layers]
            ax.semilogy(layers, grad, "-o", color=f"C{k}", markersize=3, label=f"depth {depth}")
            ax.semilogy(layers, bound, "--", color=f"C{k}", linewidth=1)
        ax.set(title=f"{activation}: |dL/dw_i| (solid), bound (dashed)", xlabel="layer i",
               ylabel="median over seeds where dL/dw_i != 0")
        ax.legend(fontsize=8)
    return harness.save_figure(fig, f"{out}/chain_gradient_per_layer.png", w, "chain/gradient_per_layer")


def plot_first_layer(grads, bounds, settings, out, w):
    """|dL/dw_1| against depth per activation, the sigmoid bound and 4^-ℓ; the fraction of dead chains beside."""
    fig, (ax, dead_ax) = harness.figure(cols=2)
    depths = np.array(settings.grad_depths)
    for k, activation in enumerate(ACTIVATIONS):
        ax.semilogy(depths, [median_nonzero(grads[activation, d, 1]) for d in depths], "-o", color=f"C{k}",
                    markersize=3, label=f"{activation} (median of live chains)")
        dead_ax.plot(depths, [dead_fraction(grads, activation, d) for d in depths], "-o", color=f"C{k}",
                     markersize=3, label=activation)
    ax.semilogy(depths, [median_nonzero(bounds["sigmoid", d, 1]) for d in depths], "--", color="C0",
                label="sigmoid bound (median)")
    ax.semilogy(depths, 4.0 ** -depths, ":", color="gray", label="4^-depth")
    ax.set(title="first-layer gradient |dL/dw_1| against depth", xlabel="depth ℓ", ylabel="|dL/dw_1|")
    ax.legend(fontsize=8)
    dead_ax.set(title="chains whose dL/dw_1 is exactly 0", xlabel="depth ℓ", ylabel="fraction of seeds",
                ylim=(-0.05, 1.05))
    dead_ax.legend(fontsize=8)
    return harness.save_figure(fig, f"{out}/chain_first_layer_vs_depth.png", w, "chain/first_layer_vs_depth")


def plot_training(train_rows, settings, out, w):
    """Median steps to the target loss against depth; depths where no seed got there drawn at the cap, hollow."""
    fig, (ax,) = harness.figure()
    for k, activation in enumerate(ACTIVATIONS):
        depths, steps, reached = [], [], []
        for depth in settings.train_depths:
            mine = [r for r in train_rows if r["activation"] == activation and r["depth"] == depth]
            done = [r["steps"] for r in mine if r["reached"]]
            depths.append(depth)
            steps.append(np.median(done) if done else settings.max_steps)
            reached.append(bool(done))
        ax.semilogy(depths, steps, "-", color=f"C{k}", label=f"{activation} (lr {LR[activation]})")
        for d, s, r in zip(depths, steps, reached):
            ax.semilogy([d], [s], "o", color=f"C{k}", markerfacecolor=f"C{k}" if r else "none")
    ax.axhline(settings.max_steps, color="gray", linestyle=":", label=f"cap ({settings.max_steps} steps)")
    ax.set(title=f"GD steps to L <= {settings.target} var(y) (hollow: no seed reached it)",
           xlabel="depth ℓ", ylabel="steps (median over the seeds that reached it)")
    ax.legend(fontsize=8)
    return harness.save_figure(fig, f"{out}/chain_steps_to_target.png", w, "chain/steps_to_target")


def log_scalars(w, grads, bounds, diffs, train_rows, curves, settings):
    """Per-depth medians, the autograd difference, and every seed-0 training curve, as TensorBoard scalars."""
    for activation in ACTIVATIONS:
        for depth in settings.grad_depths:
            w.add_scalar(f"gradient_first_layer/{activation}", median_nonzero(grads[activation, depth, 1]), depth)
            w.add_scalar(f"bound_first_layer/{activation}", float(np.median(bounds[activation, depth, 1])), depth)
            diff = max(diffs[activation, depth, i].max() for i in range(1, depth + 1))
            w.add_scalar(f"autograd_max_rel_diff/{activation}", diff, depth)
        for depth in settings.train_depths:
            steps = [r["steps"] for r in train_rows if r["activation"] == activation and r["depth"] == depth]
            w.add_scalar(f"steps_to_target_median/{activation}", float(np.median(steps)), depth)
    for row, curve in zip(train_rows, curves):
        if row["seed"] == 0:
            for step, loss in curve:
                w.add_scalar(f"train_loss/{row['activation']}_depth{row['depth']:02d}", loss, step)


def per_layer_factor(depths, values):
    """10^slope of a least-squares line through log10(values) against depth (nan values left out)."""
    return harness.log_fit_factor(depths, values)


def summarize(rows, grads, train_rows, settings):
    """The numbers the README quotes, as lines of text."""
    lines = [f"closed form vs torch autograd (float64), max relative difference over all "
             f"{len(rows)} weights and biases: {max(r['rel_diff'] for r in rows):.3g}",
             f"|dL/dw_i| <= bound for every weight: {all(abs(r['dL_dw']) <= r['bound'] for r in rows)}"]
    for activation in ACTIVATIONS:
        first = [median_nonzero(grads[activation, d, 1]) for d in settings.grad_depths]      # nan: all dead
        shallow, deep = settings.grad_depths[0], settings.grad_depths[-1]
        lines.append(f"{activation}: median |dL/dw_1| {first[0]:.3g} at depth {shallow}, {first[-1]:.3g} at depth "
                     f"{deep}, x{per_layer_factor(settings.grad_depths, first):.3g} per added layer; dL/dw_1 "
                     f"exactly 0 at depth {deep} in {100 * dead_fraction(grads, activation, deep):.0f}% of chains")
        steps = []
        for depth in settings.train_depths:
            mine = [r for r in train_rows if r["activation"] == activation and r["depth"] == depth]
            done = [r["steps"] for r in mine if r["reached"]]
            steps.append(f"{depth}:{int(np.median(done)) if done else '-'}({len(done)}/{len(mine)})")
        lines.append(f"  steps to target (median, reached/seeds) by depth: {' '.join(steps)}")
    return lines


@harness.command
def main(argv=None):
    args, settings = harness.start(NAME, __doc__, FULL, QUICK, argv)
    rows = gradient_rows(settings)
    harness.log(f"gradients of {len(rows)} weights measured ({time.perf_counter() - args.started:.1f} s)")
    harness.clear(args.out, args.overwrite)   # locks OUT; replaces its tb/ and runs/ (see --overwrite)
    results = harness.parallel_map(train, training_jobs(settings), args)
    train_rows, curves = [r for r, _ in results], [c for _, c in results]
    harness.write_csv(f"{args.out}/chain_gradients.csv", rows)
    harness.write_csv(f"{args.out}/chain_training.csv", train_rows)
    grads, bounds, diffs = per_layer(rows), per_layer(rows, "bound"), per_layer(rows, "rel_diff")
    with harness.writer(args.out) as w:
        log_scalars(w, grads, bounds, diffs, train_rows, curves, settings)
        pngs = [plot_per_layer(grads, bounds, settings, args.out, w),
                plot_first_layer(grads, bounds, settings, args.out, w),
                plot_training(train_rows, settings, args.out, w)]
        harness.finish(w, args.out, summarize(rows, grads, train_rows, settings), pngs, args.started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
