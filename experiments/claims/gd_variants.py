"""Batch gradient descent vs SGD vs mini-batch SGD (section 3): the same network from the same initial weights,
trained with plain SGD at one learning rate and batch sizes from 1 to the whole training subset, on the same
budget of examples seen (so batch size B takes epochs * n / B steps). Measured: the loss on the training subset
against examples seen and against training wall-clock, the final test accuracy, and the sharpness of each
solution (the landscape tools' mean loss rise at a filter-normalised radius, on the training subset).

Batch size 1 takes one optimizer step per example, so the full setting trains on a subset of the 60,000 images.
Wall-clock times are the training loop's own (train_and_evaluate's epoch_seconds, interpolated within an epoch);
run with --workers 1 (the default) so that no two trainings share the cores while they are timed, and on a busy
machine with OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 (spinning BLAS threads slow the small batches down 10-40x).
"""
from dataclasses import dataclass

import numpy as np

from experiments.claims import harness, solutions
from experiments.config import Config, batch_size_of
from experiments.landscape import surfaces
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
    seed: int = 0


FULL = Settings()
QUICK = Settings(limit_train=256, epochs=1, batch_sizes=(1, 64, "full"), snapshots_per_epoch=4,
                 sharpness_radii=(0.1,), sharpness_dirs=2)


def config(settings, batch_size):
    return Config(backend="manual", arch=settings.arch, optimizer="sgd", lr=settings.lr, batch_size=batch_size,
                  epochs=settings.epochs, limit_train=settings.limit_train, seed=settings.seed,
                  lr_schedule=solutions.LR_SCHEDULE)


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
    """Train one batch size; (curve rows, final row)."""
    settings, bs = job["settings"], job["batch_size"]
    cfg = config(settings, bs)
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
        curve.append({"batch_size": str(bs), "step": step, "examples_seen": epoch * n + min(batch * size, n),
                      "seconds": seconds, "train_loss": float(loss[0]), "train_accuracy": float(acc[0])})
    final = {"batch_size": str(bs), "steps": steps[-1], "examples_seen": cfg.epochs * n,
             "train_seconds": float(sum(result.epoch_seconds)), "train_loss": curve[-1]["train_loss"],
             "train_accuracy": curve[-1]["train_accuracy"], "test_loss": result.test_loss,
             "test_accuracy": result.test_accuracy,
             "distance_from_init": surfaces.distance(result.init_state, result.final_state)}
    for radius in settings.sharpness_radii:
        final[f"sharpness_r{radius:g}"] = surfaces.sharpness(evaluate, result.final_state, final["train_loss"],
                                                             settings.seed, radius, settings.sharpness_dirs)
    return curve, final


def label(batch_size, n):
    return f"batch {n} (full GD)" if batch_size == "full" else "batch 1 (SGD)" if batch_size == "1" else \
        f"batch {batch_size}"


def plot_curves(curves, settings, out, w):
    """Training-subset loss against examples seen and against training seconds, one line per batch size."""
    fig, (by_examples, by_time) = harness.figure(cols=2)
    for k, bs in enumerate(str(b) for b in settings.batch_sizes):
        mine = [r for r in curves if r["batch_size"] == bs]
        for ax, key in ((by_examples, "examples_seen"), (by_time, "seconds")):
            ax.semilogy([r[key] for r in mine], [r["train_loss"] for r in mine], "-o", color=f"C{k}", markersize=3,
                        label=label(bs, settings.limit_train))
    by_examples.set(title=f"same budget: {settings.epochs} x {settings.limit_train} examples, SGD lr {settings.lr}",
                    xlabel="examples seen", ylabel="loss on the training subset")
    by_time.set(title="the same curves against training time", xlabel="training wall-clock (s, log above 0.1)",
                ylabel="loss on the training subset")
    by_time.set_xscale("symlog", linthresh=0.1)
    by_examples.legend(fontsize=8)
    return harness.save_figure(fig, f"{out}/gd_loss_curves.png", w, "gd/loss_curves")


def plot_final(finals, settings, out, w):
    """Sharpness at each radius and test accuracy against batch size."""
    fig, (sharp, acc) = harness.figure(cols=2)
    names = [label(f["batch_size"], settings.limit_train).replace(" (", "\n(") for f in finals]
    positions = np.arange(len(finals))
    for k, radius in enumerate(settings.sharpness_radii):
        sharp.plot(positions, [f[f"sharpness_r{radius:g}"] for f in finals], "-o", color=f"C{k}",
                   label=f"radius {radius:g}")
    sharp.set(title="sharpness (filter-normalised random directions)", ylabel="mean training-loss rise")
    sharp.legend(fontsize=8)
    acc.plot(positions, [100 * f["test_accuracy"] for f in finals], "-o", label="test")
    acc.plot(positions, [100 * f["train_accuracy"] for f in finals], "-s", label="training subset")
    acc.set(title="final accuracy on the same example budget", ylabel="accuracy (%)")
    acc.legend(fontsize=8)
    for ax in (sharp, acc):
        ax.set_xticks(positions, names, fontsize=8)
    return harness.save_figure(fig, f"{out}/gd_sharpness_accuracy.png", w, "gd/sharpness_accuracy")


def summarize(finals, settings):
    radius = settings.sharpness_radii[len(settings.sharpness_radii) // 2]
    lines = [f"{settings.epochs} x {settings.limit_train} examples seen, plain SGD lr {settings.lr}, "
             f"seed {settings.seed}"]
    for f in finals:
        lines.append(f"{label(f['batch_size'], settings.limit_train)}: {f['steps']} steps, {f['train_seconds']:.1f} s, "
                     f"training loss {f['train_loss']:.4f} (acc {100 * f['train_accuracy']:.1f}%), test accuracy "
                     f"{100 * f['test_accuracy']:.2f}%, sharpness at radius {radius:g}: "
                     f"{f[f'sharpness_r{radius:g}']:.4g}, distance from init {f['distance_from_init']:.2f}")
    return lines


@harness.command
def main(argv=None):
    args, settings = harness.start(NAME, __doc__, FULL, QUICK, argv, workers=1)
    jobs = [{"settings": settings, "batch_size": bs, "run_dir": f"{args.out}/runs/batch-{bs}"}
            for bs in settings.batch_sizes]
    harness.clear(args.out, args.overwrite)   # locks OUT; replaces its tb/ and runs/ (see --overwrite)
    results = harness.parallel_map(train_variant, jobs, args)
    curves, finals = [row for r in results for row in r[0]], [r[1] for r in results]
    harness.write_csv(f"{args.out}/gd_curves.csv", curves)
    harness.write_csv(f"{args.out}/gd_final.csv", finals)
    with harness.writer(args.out) as w:
        for row in curves:
            w.add_scalar(f"train_loss_by_examples/batch_{row['batch_size']}", row["train_loss"], row["examples_seen"])
        for i, f in enumerate(finals):
            for key in ("test_accuracy", "train_loss", *(f"sharpness_r{r:g}" for r in settings.sharpness_radii)):
                w.add_scalar(f"final/{key}", f[key], i)
        pngs = [plot_curves(curves, settings, args.out, w), plot_final(finals, settings, args.out, w)]
        steps = ", ".join(f"{i}: {f['batch_size']}" for i, f in enumerate(finals))
        text = summarize(finals, settings) + [f"(TensorBoard final/* scalars: step i = batch size; {steps})"]
        harness.finish(w, args.out, text, pngs, args.started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
