"""Manual backprop vs torch autograd through whole training runs (section 9): both backends start from the same
weights and see the same batches; the largest parameter difference between them is measured at snapshots along
the way, in float64 and float32, with the per-step training losses and the final test accuracies of both.
"""
import os
import time
from dataclasses import dataclass

import numpy as np

import manual
from experiments import data
from experiments.claims import harness, solutions
from experiments.config import Config, arch_of
from experiments.train.loop import train_and_evaluate

NAME = "backend_agreement"
EPSILON = {"float64": float(np.finfo(np.float64).eps), "float32": float(np.finfo(np.float32).eps)}
LOSS_EVERY = 10   # steps between the per-step loss differences kept in the CSV and TensorBoard


@dataclass(frozen=True)
class Settings:
    arch: str = "mlp"
    epochs: int = 10
    limit_train: int = 0           # 0 = all 60,000 training images
    seeds: tuple = (0, 1)
    dtypes: tuple = ("float64", "float32")
    snapshots_per_epoch: int = 4   # parameter comparisons per epoch (the epoch ends are among them)


FULL = Settings()
QUICK = Settings(epochs=2, limit_train=1000, seeds=(0,), snapshots_per_epoch=2)


def predictions(arch, state, x, dtype):
    """Arg-max classes (N,) of the manual network with the given weights."""
    net = manual.build(arch, init="zeros", dtype=dtype).eval()
    net.load_state_dict(state)
    return np.concatenate([net.forward(x[lo:lo + 1000]).argmax(1) for lo in range(0, len(x), 1000)])


def logged_epoch_diffs(run_dir):
    """[(step, value)] of agreement/max_param_diff that train_and_evaluate logged per epoch, read back."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(os.path.join(run_dir, "manual"), size_guidance={"scalars": 0})
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars("agreement/max_param_diff")]


def compare(job):
    """Train both backends on one (dtype, seed); return the agreement rows, the loss rows and the final row."""
    s, dtype, seed = job["settings"], job["dtype"], job["seed"]
    cfg = Config(backend="both", arch=s.arch, dtype=dtype, seed=seed, epochs=s.epochs, limit_train=s.limit_train,
                 lr_schedule=solutions.LR_SCHEDULE)
    start = time.perf_counter()
    res = train_and_evaluate(cfg, job["run_dir"], snapshots_per_epoch=s.snapshots_per_epoch, quiet=True)
    seconds = time.perf_counter() - start
    a, b = res["manual"], res["torch"]
    n = s.limit_train or 60_000
    steps = solutions.snapshot_steps(cfg, n, s.snapshots_per_epoch)
    total = steps[-1] // cfg.epochs
    agreement = []
    for step, sa, sb in zip(steps, a.snapshots, b.snapshots, strict=True):
        diff = max(float(np.max(np.abs(sa[k].astype(np.float64) - sb[k]))) for k in sa)
        scale = max(float(np.max(np.abs(sa[k]))) for k in sa)
        agreement.append({"dtype": dtype, "seed": seed, "step": step, "epoch": step / total,
                          "max_abs_diff": diff, "max_abs_param": scale, "relative_diff": diff / scale,
                          "in_epsilons": diff / scale / EPSILON[dtype]})
    logged = dict(logged_epoch_diffs(job["run_dir"]))
    for row in agreement:
        row["logged_max_param_diff"] = logged.get(row["step"], float("nan")) if row["step"] else 0.0
    losses = [{"dtype": dtype, "seed": seed, "step": i + 1, "epoch": (i + 1) / total, "manual_loss": la,
               "torch_loss": lb, "abs_loss_diff": abs(la - lb)}
              for i, (la, lb) in enumerate(zip(a.train_losses, b.train_losses)) if i % LOSS_EVERY == 0]
    x, y = data.load("test", cfg.data_dir or None, dtype=dtype)
    pa, pb = (predictions(arch_of(cfg), r.final_state, x, dtype) for r in (a, b))
    final = {"dtype": dtype, "seed": seed, "steps": steps[-1], "manual_test_accuracy": a.test_accuracy,
             "torch_test_accuracy": b.test_accuracy, "manual_test_loss": a.test_loss, "torch_test_loss": b.test_loss,
             "predictions_differing": int(np.count_nonzero(pa != pb)), "test_images": len(y),
             "final_max_abs_diff": agreement[-1]["max_abs_diff"], "seconds": seconds}
    return agreement, losses, final


def plot(agreement, losses, out, w):
    """Parameter difference and training-loss difference against step, log scale, one line per (dtype, seed)."""
    fig, (ax, loss_ax) = harness.figure(cols=2)
    runs = sorted({(r["dtype"], r["seed"]) for r in agreement})
    for k, (dtype, seed) in enumerate(runs):
        mine = [r for r in agreement if (r["dtype"], r["seed"]) == (dtype, seed) and r["step"] > 0]
        ax.semilogy([r["epoch"] for r in mine], [r["relative_diff"] for r in mine], "-o",
                    color=f"C{k}", markersize=3, label=f"{dtype}, seed {seed}")
        mine = [r for r in losses if (r["dtype"], r["seed"]) == (dtype, seed) and r["abs_loss_diff"] > 0]
        loss_ax.semilogy([r["epoch"] for r in mine], [r["abs_loss_diff"] for r in mine], ".",
                         color=f"C{k}", markersize=2, alpha=0.5, label=f"{dtype}, seed {seed}")
    for dtype, eps in EPSILON.items():
        ax.axhline(eps, color="gray", linestyle=":", linewidth=1)
        ax.annotate(f"{dtype} epsilon", (0, eps), xycoords=("axes fraction", "data"), fontsize=7,
                    xytext=(2, 2), textcoords="offset points", color="gray")
    ax.set(title="max |manual - torch| / max |weight|", xlabel="epoch", ylabel="relative parameter difference")
    ax.legend(fontsize=8)
    loss_ax.set(title=f"|manual - torch| training loss, every {LOSS_EVERY}th step", xlabel="epoch",
                ylabel="absolute loss difference (exact ties left out)")
    loss_ax.legend(fontsize=8, markerscale=4)
    return harness.save_figure(fig, f"{out}/agreement_over_training.png", w, "agreement/over_training")


def growth_per_epoch(rows):
    """10^slope of log10(max_abs_diff) against epoch, least squares over the rows with a non-zero difference."""
    return harness.log_fit_factor([r["epoch"] for r in rows], [r["max_abs_diff"] for r in rows])


def summarize(agreement, finals):
    lines = []
    for f in finals:
        mine = [r for r in agreement if (r["dtype"], r["seed"]) == (f["dtype"], f["seed"]) and r["step"] > 0]
        first, last = mine[0], mine[-1]
        lines.append(f"{f['dtype']} seed {f['seed']}: difference grows x{growth_per_epoch(mine):.3g} per epoch "
                     f"(log-linear fit over {len(mine)} snapshots); at each epoch end: "
                     + " ".join(f"{r['max_abs_diff']:.2g}" for r in mine if r["epoch"] % 1 == 0))
        lines.append(
            f"{f['dtype']} seed {f['seed']}: max |param diff| {first['max_abs_diff']:.3g} at epoch "
            f"{first['epoch']:.2f} (step {first['step']}), {last['max_abs_diff']:.3g} at epoch {last['epoch']:.0f} "
            f"(step {last['step']}; {last['in_epsilons']:.3g} epsilons of the largest weight); test accuracy "
            f"manual {100 * f['manual_test_accuracy']:.2f}% vs torch {100 * f['torch_test_accuracy']:.2f}%, "
            f"{f['predictions_differing']} of {f['test_images']} test predictions differ ({f['seconds']:.0f} s)")
    return lines


@harness.command
def main(argv=None):
    args, settings = harness.start(NAME, __doc__, FULL, QUICK, argv)
    jobs = [{"settings": settings, "dtype": d, "seed": s, "run_dir": os.path.join(args.out, "runs", f"{d}-s{s}")}
            for d in settings.dtypes for s in settings.seeds]
    harness.clear(args.out, args.overwrite)   # locks OUT; replaces its tb/ and runs/ (see --overwrite)
    results = harness.parallel_map(compare, jobs, args)
    agreement = [row for r in results for row in r[0]]
    losses = [row for r in results for row in r[1]]
    finals = [r[2] for r in results]
    harness.write_csv(f"{args.out}/agreement.csv", agreement)
    harness.write_csv(f"{args.out}/agreement_losses.csv", losses)
    harness.write_csv(f"{args.out}/agreement_final.csv", finals)
    with harness.writer(args.out) as w:
        for row in agreement:
            w.add_scalar(f"max_abs_param_diff/{row['dtype']}_s{row['seed']}", row["max_abs_diff"], row["step"])
        for row in losses:
            w.add_scalar(f"abs_train_loss_diff/{row['dtype']}_s{row['seed']}", row["abs_loss_diff"], row["step"])
        harness.finish(w, args.out, summarize(agreement, finals), [plot(agreement, losses, args.out, w)], args.started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
