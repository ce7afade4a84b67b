"""Overparameterization (section 8): a one-hidden-layer ReLU net 784-W-10 for widths W from 8 to 1024, each
trained from several seeds, all else equal. Measured per width: the spread of the final losses across the seeds,
the distance between solutions, and the loss barrier on the straight line between every two of them, raw and after
aligning the second solution's hidden units to the first's (weight matching and activation matching), with the
aligned barrier's power law in the width (a least-squares slope on log-log axes), and the barrier along a trained
quadratic Bézier curve between the first pair of each width. A barrier is the highest loss on the path minus the
mean of its two ends (the landscape tools' barrier), on a fixed training subset.
"""
from dataclasses import dataclass

import numpy as np

from experiments.claims import harness, solutions
from experiments.config import Config
from experiments.landscape import surfaces

NAME = "overparam"


@dataclass(frozen=True)
class Settings:
    widths: tuple = (8, 16, 32, 64, 128, 256, 512, 1024)
    seeds: int = 8
    init: str = "kaiming_normal"
    limit_train: int = 10_000
    epochs: int = 5
    eval_samples: int = 2000             # the training subset for final and path losses, and activation matching
    path_steps: int = 10                 # segments on each path (straight or curved); 20 cost too long (3 paths a pair)
    matchings: tuple = solutions.MATCHINGS
    bezier_steps: int = 300              # SGD steps of the Bézier bend (about 4 epochs), first pair of each width


FULL = Settings()
QUICK = Settings(widths=(8, 64), seeds=2, limit_train=500, epochs=1, eval_samples=200, path_steps=4, bezier_steps=20)


def config(settings, width, seed):
    return Config(backend="manual", arch="mlp", hidden=(width,), init=settings.init, seed=seed,
                  lr_schedule=solutions.LR_SCHEDULE,
                  epochs=settings.epochs, limit_train=settings.limit_train)


def train_one(job):
    """Train one (width, seed); (summary row, final weights or None)."""
    cfg, settings = job["cfg"], job["settings"]
    metrics, result = solutions.train(cfg, job["run_dir"], settings.eval_samples)
    params = sum(v.size for v in result.final_state.values()) if result else 0
    return {"width": cfg.hidden[0], "seed": cfg.seed, "params": params, **metrics}, \
        result.final_state if result else None


def pair_rows(runs, finals, todo, paths):
    """One row per straight path: distances (absolute and per the solutions' mean norm) and the barrier."""
    rows = []
    for job, path in zip(todo, paths):
        i, j = job["ij"]
        a, b = finals[i], finals[j]
        dist, norm = surfaces.distance(a, b), (solutions.norm(a) + solutions.norm(b)) / 2
        rows.append({"width": job["key"], "seed_a": runs[i]["seed"], "seed_b": runs[j]["seed"], "distance": dist,
                     "relative_distance": dist / norm, **solutions.pair_summary(path)})
    return rows


def moments(values):
    """(mean, std, max - min) of some numbers; NaNs, without a warning, when there are none."""
    values = np.asarray(values, float)
    if not len(values):
        return float("nan"), float("nan"), float("nan")
    return float(values.mean()), float(values.std()), float(np.ptp(values))


def per_width(runs, pairs, settings):
    """One summary row per width: mean and spread of the final losses, mean distance and barrier."""
    rows = []
    for width in settings.widths:
        ok = [r for r in runs if r["width"] == width and not r["diverged"]]
        mine = [p for p in pairs if p["width"] == width]
        train, test = moments([r["train_loss"] for r in ok]), moments([r["test_loss"] for r in ok])
        rows.append({"width": width, "params": ok[0]["params"] if ok else 0, "trained": len(ok),
                     "train_loss_mean": train[0], "train_loss_std": train[1], "train_loss_range": train[2],
                     "test_loss_mean": test[0], "test_loss_std": test[1], "test_loss_range": test[2],
                     "test_accuracy_mean": moments([r["test_accuracy"] for r in ok])[0],
                     "relative_distance_mean": moments([p["relative_distance"] for p in mine])[0],
                     "barrier_mean": moments([p["barrier"] for p in mine])[0],
                     "barrier_std": moments([p["barrier"] for p in mine])[1],
                     "barrier_max": float(max((p["barrier"] for p in mine), default=float("nan"))),
                     **{f"barrier_{m}_{stat}": value for m in settings.matchings
                        for stat, value in zip(("mean", "std"), moments([p[f"barrier_{m}"] for p in mine])[:2])},
                     **bezier_columns(mine)})
    return rows


def bezier_columns(pairs):
    """The Bézier curve of the one pair that has it: barrier, highest loss and its excess over the higher end."""
    curved = [p for p in pairs if np.isfinite(p["bezier_barrier"])]
    if not curved:
        return dict.fromkeys(("bezier_barrier", "bezier_max_loss", "bezier_above_ends"), float("nan"))
    p = curved[0]
    return {"bezier_barrier": p["bezier_barrier"], "bezier_max_loss": p["bezier_max_loss"],
            "bezier_above_ends": p["bezier_max_loss"] - max(p["bezier_loss_a"], p["bezier_loss_b"])}


def fits(table, settings):
    """{path kind: (slope, standard error, widths used)} of the mean barrier against width on log-log axes."""
    widths = [t["width"] for t in table]
    kinds = {"raw": "barrier_mean", **{m: f"barrier_{m}_mean" for m in settings.matchings}}
    return {kind: solutions.loglog_slope(widths, [t[key] for t in table]) for kind, key in kinds.items()}


def plot(runs, pairs, paths, todo, table, settings, out, w):
    """Final losses per seed, their spread, barriers and the mean path, all against width."""
    fig, axes = harness.figure(cols=2, rows=2)
    widths = [t["width"] for t in table]
    losses, spread, barrier, path_ax = axes
    for key, marker, colour in (("train_loss", "o", "C0"), ("test_loss", "s", "C1")):
        ok = [r for r in runs if not r["diverged"]]
        losses.loglog([r["width"] for r in ok], [r[key] for r in ok], marker, color=colour, alpha=0.4)
        losses.loglog(widths, [t[f"{key}_mean"] for t in table], "-", color=colour,
                      label=f"{key.replace('_', ' ')} (mean over seeds)")
        spread.loglog(widths, [t[f"{key}_std"] for t in table], f"-{marker}", color=colour,
                      label=f"std of the {key.replace('_', ' ')} across seeds")
    losses.set(title=f"final losses, {settings.seeds} seeds per width", xlabel="hidden width W", ylabel="loss")
    losses.legend(fontsize=8)
    spread.set(title="spread across initializations", xlabel="hidden width W", ylabel="standard deviation")
    spread.legend(fontsize=8)
    barrier.semilogx([p["width"] for p in pairs], [p["barrier"] for p in pairs], "o", color="C2", alpha=0.4)
    barrier.semilogx(widths, [t["barrier_mean"] for t in table], "-", color="C2", label="barrier (mean over pairs)")
    barrier.semilogx(widths, [t["relative_distance_mean"] for t in table], "--", color="C3",
                     label="distance / mean norm of the pair")
    barrier.set(title="between two solutions of one width", xlabel="hidden width W")
    barrier.legend(fontsize=8)
    for k, width in enumerate(widths):
        mine = np.array([path["raw"]["loss"] for job, path in zip(todo, paths) if job["key"] == width])   # (pairs, alphas)
        if len(mine):
            path_ax.semilogy(paths[0]["raw"]["alpha"], mine.mean(axis=0), color=f"C{k % 10}", label=f"W = {width}")
    path_ax.set(title="straight line between two solutions (mean over pairs)",
                xlabel="alpha", ylabel=f"loss on {settings.eval_samples} training images")
    path_ax.legend(fontsize=7, ncol=2)
    return harness.save_figure(fig, f"{out}/overparam.png", w, "overparam/summary")


def plot_aligned(pairs, paths, table, slopes, settings, out, w):
    """Raw and aligned barriers against width on log-log axes with their fitted power laws; the raw, aligned and
    Bézier paths of the first pair at the smallest and the largest width."""
    fig, (loglog, *path_axes) = harness.figure(cols=3)
    widths = np.array([t["width"] for t in table], float)
    for k, (kind, (slope, stderr, _)) in enumerate(slopes.items()):
        key = "barrier" if kind == "raw" else f"barrier_{kind}"
        mean = np.array([t[f"{key}_mean"] for t in table])
        loglog.loglog([p["width"] for p in pairs], [p[key] for p in pairs], ".", color=f"C{k}", alpha=0.25)
        loglog.loglog(widths, mean, "o", color=f"C{k}", label=f"{kind}: mean, slope {slope:.2f} ± {stderr:.2f}")
        keep = np.isfinite(mean) & (mean > 0)
        if keep.sum() >= 2:
            intercept = np.mean(np.log(mean[keep]) - slope * np.log(widths[keep]))
            loglog.loglog(widths, np.exp(intercept) * widths ** slope, "-", color=f"C{k}")
    aligned = np.array([t[f"barrier_{settings.matchings[0]}_mean"] for t in table])
    if np.isfinite(aligned[0]) and aligned[0] > 0:
        loglog.loglog(widths, aligned[0] * (widths / widths[0]) ** -0.5, ":", color="gray", label="slope -1/2")
    loglog.set(title="barrier (max on path - mean of ends) vs width", xlabel="hidden width W", ylabel="barrier")
    loglog.legend(fontsize=7)
    for ax, width in zip(path_axes, (min(settings.widths), max(settings.widths))):
        pair, path = next(((r, p) for r, p in zip(pairs, paths) if r["width"] == width and p["bezier"] is not None),
                          (None, None))
        if path is None:
            continue
        for kind in ("raw", *settings.matchings, "bezier"):
            ax.semilogy(path[kind]["alpha"], path[kind]["loss"], "-o", markersize=3,
                        label="Bézier curve (raw ends)" if kind == "bezier" else f"straight, {kind}")
        ax.set(title=f"W = {width}, seeds {pair['seed_a']} and {pair['seed_b']}",
               xlabel="t (0: seed a, 1: seed b)", ylabel=f"loss on {settings.eval_samples} training images")
        ax.legend(fontsize=7)
    return harness.save_figure(fig, f"{out}/overparam_aligned.png", w, "overparam/aligned")


def summarize(table, pairs, slopes, settings):
    lines = [f"784-W-10 ReLU, {settings.init}, {settings.seeds} seeds per width, {settings.epochs} epochs on "
             f"{settings.limit_train} images; losses on {settings.eval_samples} training images",
             f"barrier = highest loss on the path minus the mean of its two ends, {settings.path_steps} segments "
             f"per path; aligned = seed b's hidden units permuted to match seed a's "
             f"({' and '.join(settings.matchings)} matching); Bézier = quadratic curve between the raw solutions, "
             f"bend trained {settings.bezier_steps} SGD steps (first pair of each width)"]
    for t in table:
        lines.append(f"W={t['width']} ({t['params']} params, {t['trained']} trained): training loss "
                     f"{t['train_loss_mean']:.4f} ± {t['train_loss_std']:.2g} (range {t['train_loss_range']:.2g}), "
                     f"test loss {t['test_loss_mean']:.4f} ± {t['test_loss_std']:.2g}, test accuracy "
                     f"{100 * t['test_accuracy_mean']:.2f}%, barrier raw {t['barrier_mean']:.3g} ± "
                     f"{t['barrier_std']:.2g} (max {t['barrier_max']:.3g}), "
                     + ", ".join(f"{m} aligned {t[f'barrier_{m}_mean']:.3g} ± {t[f'barrier_{m}_std']:.2g}"
                                 for m in settings.matchings)
                     + f", Bézier {t['bezier_barrier']:.3g} (highest loss {t['bezier_above_ends']:.2g} above the "
                       f"higher end), distance/norm {t['relative_distance_mean']:.3g}")
    for kind, (slope, stderr, n) in slopes.items():
        lines.append(f"barrier ({kind}) ~ W^slope: slope {slope:.3f} ± {stderr:.3f} (least squares on log mean "
                     f"barrier vs log W over {n} widths); -1/2 is {abs(slope + 0.5) / stderr:.1f} standard errors "
                     f"away")
    wide = table[-min(3, len(table)):]
    lines.append(f"the floor: mean barrier over the {len(wide)} widest widths (W >= {wide[0]['width']}): raw "
                 f"{np.mean([t['barrier_mean'] for t in wide]):.3g}, "
                 + ", ".join(f"{m} aligned {np.mean([t[f'barrier_{m}_mean'] for t in wide]):.3g}"
                             for m in settings.matchings))
    for m in settings.matchings:
        ratio = [p[f"barrier_{m}"] / p["barrier"] for p in pairs if p["barrier"] > 0]
        lines.append(f"{m} aligned / raw barrier per pair: {harness.stats(ratio)}; aligned above raw in "
                     f"{sum(r > 1 for r in ratio)} of {len(ratio)} pairs")
    above = [t["bezier_above_ends"] for t in table if np.isfinite(t["bezier_above_ends"])]
    lines.append(f"Bézier curves: highest loss minus the higher end's loss {harness.stats(above)}; the highest point "
                 f"is an end (0) on {sum(a <= 0 for a in above)} of {len(above)} curves")
    return lines


@harness.command
def main(argv=None):
    args, settings = harness.start(NAME, __doc__, FULL, QUICK, argv)
    harness.clear(args.out, args.overwrite)   # locks OUT; replaces its tb/ and runs/ (see --overwrite)
    jobs = [{"settings": settings, "cfg": config(settings, width, seed), "run_dir": f"{args.out}/runs/w{width}-s{seed}"}
            for width in sorted(settings.widths, reverse=True) for seed in range(settings.seeds)]   # longest first
    with harness.workers(args) as sweep:
        harness.log(f"training {len(jobs)} networks")
        results = harness.run(sweep, train_one, jobs)
        runs, finals = [r[0] for r in results], [r[1] for r in results]
        groups = {width: [(i, jobs[i]["cfg"], finals[i]) for i, r in enumerate(runs)
                          if r["width"] == width and not r["diverged"]] for width in settings.widths}
        todo = solutions.path_jobs(groups, settings.eval_samples, settings.path_steps, settings.matchings,
                                   settings.bezier_steps)
        harness.log(f"{len(todo)} pairs of solutions: straight paths raw and aligned, Bézier curves")
        paths = harness.run(sweep, solutions.pair_paths, todo)
    pairs = pair_rows(runs, finals, todo, paths)
    table = per_width(runs, pairs, settings)
    slopes = fits(table, settings)
    harness.write_csv(f"{args.out}/overparam_runs.csv", runs)
    harness.write_csv(f"{args.out}/overparam_pairs.csv", pairs)
    harness.write_csv(f"{args.out}/overparam_widths.csv", table)
    with harness.writer(args.out) as w:
        for t in table:
            for key in ("train_loss_std", "test_loss_std", "barrier_mean", "relative_distance_mean", "train_loss_mean",
                        *(f"barrier_{m}_mean" for m in settings.matchings), "bezier_barrier"):
                w.add_scalar(f"by_width/{key}", t[key], t["width"])
        pngs = [plot(runs, pairs, paths, todo, table, settings, args.out, w),
                plot_aligned(pairs, paths, table, slopes, settings, args.out, w)]
        harness.finish(w, args.out, summarize(table, pairs, slopes, settings), pngs, args.started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
