"""Batch gradient descent vs SGD vs mini-batch SGD (section 3): the same network from the same initial weights,
trained with plain SGD at one learning rate and batch sizes from 1 to the whole training subset, on the same
budget of examples seen (so batch size B takes epochs * n / B steps), from several seeds. Measured: the loss on
the training subset against examples seen and against training wall-clock, the final test accuracy, and the
sharpness of each solution two ways, on the training subset: the landscape tools' mean loss rise at a
filter-normalised radius, and the Hessian's largest and smallest eigenvalues λ_max and λ_min (Lanczos on the
manual engine's exact Hessian-vector products, experiments.landscape.curvature), at the solution and at the
initial weights.

Batch size 1 takes one optimizer step per example, so the full setting trains on a subset of the 60,000 images.
Wall-clock times are the training loop's own (train_and_evaluate's epoch_seconds, interpolated within an epoch);
run with --workers 1 (the default) so that no two trainings share the cores while they are timed, and on a busy
machine with OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 (spinning BLAS threads slow the small batches down 10-40x).
"""
from dataclasses import dataclass

import numpy as np

from experiments.claims import harness, solutions
from experiments.config import Config, arch_of, batch_size_of
from experiments.landscape import curvature, surfaces
from experiments.train.loop import train_and_evaluate

NAME = "gd_variants"


@dataclass(frozen=True)
class Settings:
    arch: str = "mlp"
    limit_train: int = 2000                      # the training subset: the first n images
    epochs: int = 10                             # the budget: epochs * n examples seen, whatever the batch size
    batch_sizes: tuple = (1, 8, 64, 256, "full")
    lr: float = 0.01                             # plain SGD, mean loss over the batch; 0.05 kills batch size 1
    snapshots_per_epoch: int = 2
    sharpness_radii: tuple = (0.05, 0.1, 0.2)    # filter-normalised
    sharpness_dirs: int = 10
    seeds: tuple = (0, 1, 2)                     # initial weights and batch order
    eigen_tol: float = 1e-4                      # eigsh's relative tolerance on λ_max and λ_min


FULL = Settings()
QUICK = Settings(limit_train=256, epochs=1, batch_sizes=(1, 64, "full"), snapshots_per_epoch=4,
                 sharpness_radii=(0.1,), sharpness_dirs=2, seeds=(0,), eigen_tol=1e-3)


def config(settings, batch_size, seed):
    return Config(backend="manual", arch=settings.arch, optimizer="sgd", lr=settings.lr, batch_size=batch_size,
                  epochs=settings.epochs, limit_train=settings.limit_train, seed=seed,
                  lr_schedule=solutions.LR_SCHEDULE)


def curvature_of(cfg, state, x, y, tol, prefix):
    """{prefix + "lambda_max", prefix + "lambda_min"}: the extreme eigenvalues of the Hessian of the mean loss on
    (x, y) at state, by eigsh on the manual engine's Hessian-vector products in cfg's dtype."""
    op = curvature.operator("manual", arch_of(cfg), state, x, y, dtype=cfg.dtype)
    ends = curvature.extremes(op, tol=tol, seed=cfg.seed)
    return {f"{prefix}lambda_max": ends["lambda_max"], f"{prefix}lambda_min": ends["lambda_min"]}


def position(step, total, epochs):
    """(epoch, batches done in it) of a global step; the last step is the last epoch's end, not the next's start."""
    epoch = min(step // total, epochs - 1)
    return epoch, step - epoch * total


def snapshot_clock(steps, total, epoch_seconds):
    """Training seconds at each snapshot step: whole epochs' times plus a share of the current one's."""
    done = np.concatenate([[0.0], np.cumsum(epoch_seconds)])                          # (epochs + 1,)
    clock = []
    for step in steps:
        epoch, batch = position(step, total, len(epoch_seconds))
        clock.append(float(done[epoch] + batch / total * epoch_seconds[epoch]))
    return clock


def train_variant(job):
    """Train one batch size from one seed; (curve rows, final row)."""
    settings, bs, seed = job["settings"], job["batch_size"], job["seed"]
    cfg = config(settings, bs, seed)
    result = train_and_evaluate(cfg, job["run_dir"], snapshots_per_epoch=settings.snapshots_per_epoch,
                                quiet=True)["manual"]
    n, size = settings.limit_train, batch_size_of(cfg, settings.limit_train)
    steps = solutions.snapshot_steps(cfg, n, settings.snapshots_per_epoch)
    total = steps[-1] // cfg.epochs                                                   # batches per epoch
    clock = snapshot_clock(steps, total, result.epoch_seconds)
    evaluate = solutions.train_evaluator(cfg, settings.limit_train)
    curve = []
    for step, seconds, state in zip(steps, clock, result.snapshots, strict=True):
        epoch, batch = position(step, total, cfg.epochs)
        loss, acc = evaluate(state)
        curve.append({"batch_size": str(bs), "seed": seed, "step": step,
                      "examples_seen": epoch * n + min(batch * size, n),
                      "seconds": seconds, "train_loss": float(loss[0]), "train_accuracy": float(acc[0])})
    final = {"batch_size": str(bs), "seed": seed, "steps": steps[-1], "examples_seen": cfg.epochs * n,
             "train_seconds": float(sum(result.epoch_seconds)), "train_loss": curve[-1]["train_loss"],
             "train_accuracy": curve[-1]["train_accuracy"], "test_loss": result.test_loss,
             "test_accuracy": result.test_accuracy,
             "distance_from_init": surfaces.distance(result.init_state, result.final_state)}
    for radius in settings.sharpness_radii:
        final[f"sharpness_r{radius:g}"] = surfaces.sharpness(evaluate, result.final_state, final["train_loss"],
                                                             seed, radius, settings.sharpness_dirs)
    x, y = solutions.training_subset(cfg, settings.limit_train)
    final.update(curvature_of(cfg, result.final_state, x, y, settings.eigen_tol, ""))
    final.update(curvature_of(cfg, result.init_state, x, y, settings.eigen_tol, "init_"))
    return curve, final


def label(batch_size, n):
    return f"batch {n} (full GD)" if batch_size == "full" else "batch 1 (SGD)" if batch_size == "1" else \
        f"batch {batch_size}"


def plot_curves(curves, settings, out, w):
    """Training-subset loss against examples seen and against training seconds, one line per batch size."""
    fig, (by_examples, by_time) = harness.figure(cols=2)
    for k, bs in enumerate(str(b) for b in settings.batch_sizes):
        mine = [r for r in curves if r["batch_size"] == bs and r["seed"] == settings.seeds[0]]
        for ax, key in ((by_examples, "examples_seen"), (by_time, "seconds")):
            ax.semilogy([r[key] for r in mine], [r["train_loss"] for r in mine], "-o", color=f"C{k}", markersize=3,
                        label=label(bs, settings.limit_train))
    by_examples.set(title=f"same budget: {settings.epochs} x {settings.limit_train} examples, SGD lr {settings.lr}, "
                          f"seed {settings.seeds[0]}",
                    xlabel="examples seen", ylabel="loss on the training subset")
    by_time.set(title="the same curves against training time", xlabel="training wall-clock (s, log above 0.1)",
                ylabel="loss on the training subset")
    by_time.set_xscale("symlog", linthresh=0.1)
    by_examples.legend(fontsize=8)
    return harness.save_figure(fig, f"{out}/gd_loss_curves.png", w, "gd/loss_curves")


def by_batch(finals, settings, key):
    """(means, stds, per-seed values) of finals[key] per batch size, in settings.batch_sizes' order."""
    groups = [[f[key] for f in finals if f["batch_size"] == str(bs)] for bs in settings.batch_sizes]
    return np.array([np.mean(g) for g in groups]), np.array([np.std(g) for g in groups]), groups


def plot_final(finals, settings, out, w):
    """Loss-rise sharpness at each radius, λ_max (and |λ_min|) of the Hessian, and test accuracy against batch size;
    means over the seeds with their standard deviation, each seed a dot."""
    fig, (sharp, hessian, acc) = harness.figure(cols=3)
    names = [label(str(bs), settings.limit_train).replace(" (", "\n(") for bs in settings.batch_sizes]
    positions = np.arange(len(names))
    for k, radius in enumerate(settings.sharpness_radii):
        mean, std, _ = by_batch(finals, settings, f"sharpness_r{radius:g}")
        sharp.errorbar(positions, mean, std, fmt="-o", color=f"C{k}", capsize=3, label=f"radius {radius:g}")
    sharp.set(title="loss-rise sharpness (filter-normalised directions)", ylabel="mean training-loss rise")
    sharp.set_yscale("log")
    sharp.legend(fontsize=8)
    for k, (key, name) in enumerate((("lambda_max", "λ_max at the solution"), ("init_lambda_max", "λ_max at init"))):
        mean, std, groups = by_batch(finals, settings, key)
        hessian.errorbar(positions, mean, std, fmt="-o", color=f"C{k}", capsize=3, label=name)
        for p, g in zip(positions, groups):
            hessian.plot([p] * len(g), g, ".", color=f"C{k}", alpha=0.5)
    mean, std, _ = by_batch(finals, settings, "lambda_min")
    hessian.errorbar(positions, -mean, std, fmt="--s", color="C2", capsize=3, label="-λ_min at the solution")
    hessian.axhline(2 / settings.lr, color="gray", linestyle=":", label=f"2/lr = {2 / settings.lr:g}")
    hessian.set(title=f"Hessian of the mean loss on {settings.limit_train} images", ylabel="eigenvalue (log)")
    hessian.set_yscale("log")
    hessian.legend(fontsize=7)
    for key, marker, name in (("test_accuracy", "-o", "test"), ("train_accuracy", "-s", "training subset")):
        mean, std, _ = by_batch(finals, settings, key)
        acc.errorbar(positions, 100 * mean, 100 * std, fmt=marker, capsize=3, label=name)
    acc.set(title="final accuracy on the same example budget", ylabel="accuracy (%)")
    acc.legend(fontsize=8)
    for ax in (sharp, hessian, acc):
        ax.set_xticks(positions, names, fontsize=8)
    return harness.save_figure(fig, f"{out}/gd_sharpness_accuracy.png", w, "gd/sharpness_accuracy")


def summarize(finals, settings):
    radius = settings.sharpness_radii[len(settings.sharpness_radii) // 2]
    lines = [f"{settings.epochs} x {settings.limit_train} examples seen, plain SGD lr {settings.lr}, seeds "
             f"{', '.join(map(str, settings.seeds))}; each value mean ± std over the seeds (min, max); λ_max and "
             f"λ_min: Hessian of the mean loss on the {settings.limit_train} training images, eigsh on manual "
             f"Hessian-vector products (tol {settings.eigen_tol:g})"]
    for bs in settings.batch_sizes:
        mine = [f for f in finals if f["batch_size"] == str(bs)]
        def stat(key, scale=1.0):
            values = np.array([scale * f[key] for f in mine])
            return f"{values.mean():.4g} ± {values.std():.2g}"
        lines.append(f"{label(str(bs), settings.limit_train)}: {mine[0]['steps']} steps, {stat('train_seconds')} s, "
                     f"training loss {stat('train_loss')} (acc {stat('train_accuracy', 100)}%), test accuracy "
                     f"{stat('test_accuracy', 100)}%, sharpness at radius {radius:g}: "
                     f"{stat(f'sharpness_r{radius:g}')}, λ_max "
                     f"{harness.stats([f['lambda_max'] for f in mine])} (at init "
                     f"{stat('init_lambda_max')}), λ_min {stat('lambda_min')}, distance from init "
                     f"{stat('distance_from_init')}")
    lam = {str(bs): np.mean([f["lambda_max"] for f in finals if f["batch_size"] == str(bs)])
           for bs in settings.batch_sizes}
    order = sorted(lam, key=lam.get)
    lines.append("λ_max, mean over seeds, from flattest to sharpest: " + ", ".join(
        f"batch {bs} {lam[bs]:.3g}" for bs in order) + f"; largest / smallest {lam[order[-1]] / lam[order[0]]:.3g}x; "
        f"plain GD at lr {settings.lr:g} is stable only where λ_max < 2/lr = {2 / settings.lr:g}")
    return lines


@harness.command
def main(argv=None):
    args, settings = harness.start(NAME, __doc__, FULL, QUICK, argv, workers=1)
    jobs = [{"settings": settings, "batch_size": bs, "seed": seed, "run_dir": f"{args.out}/runs/batch-{bs}-s{seed}"}
            for seed in settings.seeds for bs in settings.batch_sizes]
    harness.clear(args.out, args.overwrite)   # locks OUT; replaces its tb/ and runs/ (see --overwrite)
    results = harness.parallel_map(train_variant, jobs, args)
    curves, finals = [row for r in results for row in r[0]], [r[1] for r in results]
    harness.write_csv(f"{args.out}/gd_curves.csv", curves)
    harness.write_csv(f"{args.out}/gd_final.csv", finals)
    with harness.writer(args.out) as w:
        for row in curves:
            w.add_scalar(f"train_loss_by_examples/batch_{row['batch_size']}_s{row['seed']}", row["train_loss"],
                         row["examples_seen"])
        for i, bs in enumerate(settings.batch_sizes):
            for key in ("test_accuracy", "train_loss", "lambda_max", "lambda_min", "init_lambda_max",
                        *(f"sharpness_r{r:g}" for r in settings.sharpness_radii)):
                w.add_scalar(f"final/{key}", by_batch(finals, settings, key)[0][i], i)
        pngs = [plot_curves(curves, settings, args.out, w), plot_final(finals, settings, args.out, w)]
        steps = ", ".join(f"{i}: {bs}" for i, bs in enumerate(settings.batch_sizes))
        text = summarize(finals, settings) + [f"(TensorBoard final/* scalars, means over the seeds: step i = batch "
                                              f"size; {steps})"]
        harness.finish(w, args.out, text, pngs, args.started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
