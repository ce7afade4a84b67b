"""The edge of stability (notes, section 3: batch gradient descent): full-batch gradient descent on a subset of
MNIST at a few step sizes η, with the Hessian's largest eigenvalue λ_max measured every few steps (Lanczos on the
manual engine's exact Hessian-vector products, experiments.landscape.curvature). On a quadratic, gradient descent
diverges along any direction whose curvature exceeds 2/η; Cohen et al. (2021) report that on neural networks
λ_max instead rises until it reaches 2/η ("progressive sharpening") and then hovers there while the loss keeps
falling, though no longer monotonically. Measured per η: λ_max against step beside the 2/η line, the loss at every
step, when λ_max first reaches 2/η, how it behaves after, and how often the loss rises.

The net is a small tanh MLP in float64: tanh keeps the loss twice differentiable everywhere (a ReLU net's Hessian
ignores the kinks), the small net makes each full-batch step and each Hessian-vector product cheap enough to
measure λ_max every few steps, and float64 keeps eigsh's λ_max exact to its tolerance, so that λ_max against 2/η is
not blurred by round-off. Each λ_max starts Lanczos from the previous top eigenvector.
"""
from dataclasses import dataclass

import numpy as np
from scipy.sparse.linalg import eigsh

import manual
from experiments import data
from experiments.backends import Diverged
from experiments.claims import harness
from experiments.landscape import curvature
from manual import spec
from manual.optim import SGD

NAME = "edge_of_stability"
DTYPE = "float64"
EDGE = 0.9             # λ_max >= EDGE * 2/η counts as at the edge


@dataclass(frozen=True)
class Settings:
    hidden: tuple = (32, 32)
    activation: str = "tanh"
    limit_train: int = 2000              # the full batch: the first n training images
    etas: tuple = (0.1, 0.2, 0.3)        # step sizes of plain gradient descent (no momentum), mean loss
    steps: int = 400
    every: int = 5                       # λ_max every this many steps (and at the last)
    eigen_tol: float = 1e-4
    seed: int = 0


FULL = Settings()
QUICK = Settings(limit_train=300, steps=60, every=10)


def arch(settings):
    return spec.get("mlp", hidden=settings.hidden, activation=settings.activation)


def top_eigen(layers, state, x, y, v0, tol):
    """(λ_max, its eigenvector, products): eigsh on the Hessian of the mean loss at state, started from v0."""
    op = curvature.operator("manual", layers, state, x, y, dtype=DTYPE)
    values, vectors = eigsh(op, k=1, which="LA", v0=v0, tol=tol)
    return float(values[0]), vectors[:, 0], op.products


def descend(job):
    """Full-batch gradient descent at one η: (loss rows, one per step; λ_max rows, every few steps)."""
    settings, eta = job["settings"], job["eta"]
    layers = arch(settings)
    x, y = data.load("train", None, dtype=DTYPE, limit=settings.limit_train)
    net = manual.build(layers, seed=settings.seed, dtype=DTYPE)
    rng = np.random.default_rng(settings.seed)
    opt, v0 = SGD(net.params, lr=eta), rng.standard_normal(sum(p.size for p in net.params.values()))
    losses, sharpness = [], []
    for step in range(settings.steps + 1):
        if step % settings.every == 0 or step == settings.steps:
            lam, v0, products = top_eigen(layers, net.state_dict(), x, y, v0, settings.eigen_tol)
            sharpness.append({"eta": eta, "step": step, "lambda_max": lam, "two_over_eta": 2 / eta,
                              "products": products})
        loss, grads = net.loss_and_grads(x, y, reduction="mean")
        if not np.isfinite(loss):
            raise Diverged(f"gradient descent at eta {eta}: loss {loss} at step {step}")
        losses.append({"eta": eta, "step": step, "loss": float(loss)})
        if step < settings.steps:
            opt.step(grads)
    accuracy = float(np.mean(np.argmax(net.forward(x), axis=1) == y))
    return losses, sharpness, accuracy


def edge_summary(losses, sharpness, eta):
    """Numbers of one η's run: λ_max's start, peak and end, the first step at the edge (λ_max >= EDGE * 2/η), the
    spell at the edge (first to last such step) with λ_max η / 2 over it, and the loss rises."""
    lam = np.array([r["lambda_max"] for r in sharpness])                    # (measurements,)
    at = np.array([r["step"] for r in sharpness])
    loss = np.array([r["loss"] for r in losses])                            # (steps + 1,)
    rises = np.diff(loss) > 0
    out = {"eta": eta, "two_over_eta": 2 / eta, "lambda_start": lam[0], "lambda_peak": lam.max(),
           "peak_step": int(at[lam.argmax()]), "lambda_end": lam[-1], "loss_start": loss[0], "loss_end": loss[-1],
           "loss_rises": int(rises.sum()), "steps": len(rises)}
    edge = np.nonzero(lam >= EDGE * 2 / eta)[0]
    if not len(edge):
        return {**out, "edge_first": None}
    first, last = at[edge[0]], at[edge[-1]]
    spell = lam[edge[0]:edge[-1] + 1] * eta / 2
    return {**out, "edge_first": int(first), "edge_last": int(last), "ratio_median": float(np.median(spell)),
            "ratio_low": float(spell.min()), "ratio_high": float(spell.max()),
            "rises_in_spell": int(rises[first:last].sum()), "loss_at_first": loss[first], "loss_at_last": loss[last]}


def describe(s):
    """One findings line for an edge_summary."""
    head = (f"η={s['eta']:g} (2/η = {s['two_over_eta']:.3g}): λ_max {s['lambda_start']:.3g} at step 0, peak "
            f"{s['lambda_peak']:.3g} at step {s['peak_step']} ({s['lambda_peak'] / s['two_over_eta']:.2f} × 2/η), "
            f"{s['lambda_end']:.3g} at the end; loss {s['loss_start']:.3g} -> {s['loss_end']:.3g}, rose on "
            f"{s['loss_rises']} of {s['steps']} steps")
    if s["edge_first"] is None:
        return head + f"; λ_max never reached {EDGE:g} × 2/η"
    return head + (f"; at the edge (λ_max >= {EDGE:g} × 2/η) from step {s['edge_first']} to {s['edge_last']}, "
                   f"λ_max / (2/η) there median {s['ratio_median']:.2f} (range {s['ratio_low']:.2f}-"
                   f"{s['ratio_high']:.2f}), loss {s['loss_at_first']:.3g} -> {s['loss_at_last']:.3g} with "
                   f"{s['rises_in_spell']} rises in that spell")


def plot(losses, sharpness, settings, out, w):
    """λ_max against step with each η's 2/η line, and the loss against step."""
    fig, (lam_ax, loss_ax) = harness.figure(cols=2)
    for k, eta in enumerate(settings.etas):
        mine = [r for r in sharpness if r["eta"] == eta]
        lam_ax.plot([r["step"] for r in mine], [r["lambda_max"] for r in mine], "-", color=f"C{k}",
                    label=f"λ_max, η = {eta:g}")
        lam_ax.axhline(2 / eta, color=f"C{k}", linestyle=":", label=f"2/η = {2 / eta:.3g}")
        curve = [r for r in losses if r["eta"] == eta]
        loss_ax.semilogy([r["step"] for r in curve], [r["loss"] for r in curve], "-", color=f"C{k}",
                         label=f"η = {eta:g}")
    lam_ax.set(title=f"sharpness under full-batch GD, {settings.limit_train} images", xlabel="step",
               ylabel="λ_max of the Hessian of the mean loss")
    lam_ax.legend(fontsize=7)
    loss_ax.set(title="training loss (the full batch)", xlabel="step", ylabel="mean cross-entropy")
    loss_ax.legend(fontsize=8)
    return harness.save_figure(fig, f"{out}/edge_of_stability.png", w, "eos/sharpness_and_loss")


@harness.command
def main(argv=None):
    args, settings = harness.start(NAME, __doc__, FULL, QUICK, argv)
    harness.clear(args.out, args.overwrite)   # locks OUT; replaces its tb/ and runs/ (see --overwrite)
    jobs = [{"settings": settings, "eta": eta} for eta in settings.etas]
    results = harness.parallel_map(descend, jobs, args)
    losses = [row for r in results for row in r[0]]
    sharpness = [row for r in results for row in r[1]]
    harness.write_csv(f"{args.out}/eos_loss.csv", losses)
    harness.write_csv(f"{args.out}/eos_sharpness.csv", sharpness)
    summaries = [edge_summary([r for r in losses if r["eta"] == eta], [r for r in sharpness if r["eta"] == eta], eta)
                 for eta in settings.etas]
    products = [r["products"] for r in sharpness]
    text = [f"784-{'-'.join(map(str, settings.hidden))}-10 {settings.activation}, {DTYPE}, seed {settings.seed}; "
            f"full-batch gradient descent (no momentum) on the mean cross-entropy of the first {settings.limit_train} "
            f"training images, {settings.steps} steps per η; λ_max every {settings.every} steps by eigsh (tol "
            f"{settings.eigen_tol:g}) on manual Hessian-vector products, {np.mean(products):.1f} products per λ_max "
            f"on average"]
    text += [describe(s) for s in summaries]
    text += [f"η={eta:g}: final accuracy on the {settings.limit_train} images {100 * acc:.1f}%"
             for eta, (_, _, acc) in zip(settings.etas, results)]
    with harness.writer(args.out) as w:
        for r in sharpness:
            w.add_scalar(f"lambda_max/eta_{r['eta']:g}", r["lambda_max"], r["step"])
            w.add_scalar(f"two_over_eta/eta_{r['eta']:g}", r["two_over_eta"], r["step"])
        for r in losses:
            w.add_scalar(f"loss/eta_{r['eta']:g}", r["loss"], r["step"])
        harness.finish(w, args.out, text, [plot(losses, sharpness, settings, args.out, w)], args.started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
