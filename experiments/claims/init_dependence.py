"""Dependence on initialization (section 8): mlp trained from several seeds of each initialization scheme, all
else equal. Measured: the spread of the final losses and accuracies within each scheme, the distances between all
solutions, and the loss barrier on the straight line between every two solutions of a scheme, raw and after
weight matching aligns the second solution's hidden units to the first's, and along a trained quadratic Bézier
curve between the first pair of each scheme (a barrier is the landscape tools': the highest loss on the path minus
the mean of its two ends, on a fixed training subset).

Zero initialization and symmetry: when every weight starts equal, every hidden unit of a layer computes the same
function and receives the same gradient, so the units stay identical and the layer acts as one unit. With ReLU
(relu(0) = 0 and relu'(0) = 0) no hidden weight ever gets a gradient and only the output bias learns; a sigmoid
net, whose hidden units output 1/2 at zero, does learn, but as one unit per layer. Both are measured: the largest
difference between any two hidden units' incoming and outgoing weights, along training, against a random init.
The tracked sigmoid runs train in float64, where every product keeps identical units identical bit for bit; the
same zero-init run in float32 shows what BLAS round-off does (OpenBLAS's sgemm rounds the rows of a product with
identical rows differently), and blas_rounding measures that on the products themselves.
"""
from dataclasses import dataclass

import numpy as np
from matplotlib.colors import LogNorm

from experiments.claims import harness, solutions
from experiments.config import Config

NAME = "init_dependence"
SYMMETRY_RUNS = (("sigmoid", "zeros", "float64"), ("sigmoid", "zeros", "float32"),
                 ("sigmoid", "xavier_uniform", "float64"))   # (activation, init, dtype), seed 0, tracked


@dataclass(frozen=True)
class Settings:
    schemes: tuple = ("zeros", "normal:0.01", "xavier_uniform", "kaiming_normal", "normal:1.0")
    seeds: int = 10
    limit_train: int = 20_000
    epochs: int = 3
    eval_samples: int = 2000             # the training subset for losses along paths
    path_steps: int = 10                 # segments on each path (straight or curved) between two solutions
    matchings: tuple = ("weight",)       # alignments before the straight path (solutions.MATCHINGS)
    bezier_steps: int = 300              # SGD steps of the Bézier bend, first pair of each scheme
    symmetry_snapshots_per_epoch: int = 4


FULL = Settings()
QUICK = Settings(seeds=2, limit_train=500, epochs=1, eval_samples=200, path_steps=4, bezier_steps=20,
                 symmetry_snapshots_per_epoch=2)


def config(settings, init, seed, activation="", dtype="float32"):
    return Config(backend="manual", arch="mlp", activation=activation, init=init, seed=seed, dtype=dtype,
                  epochs=settings.epochs, limit_train=settings.limit_train, lr_schedule=solutions.LR_SCHEDULE)


def blas_rounding(x, dtype, units=256, seed=0):
    """{product: largest difference between outputs that equal units make}: x @ W^T with `units` identical rows
    of W (the forward's first product) and d^T x with identical columns of d (the weight gradient), in dtype."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype)                                                         # (N, 784)
    w = np.tile(rng.standard_normal(x.shape[1]).astype(dtype) * 1e-3, (units, 1))   # (units, 784)
    d = np.tile(rng.standard_normal((len(x), 1)).astype(dtype), (1, units))         # (N, units)
    z, grad = x @ w.T, d.T @ x                                                       # (N, units), (units, 784)
    return {"x @ W^T": float(np.max(np.abs(z - z[:, :1]))), "d^T x": float(np.max(np.abs(grad - grad[:1])))}


def hidden_layers(state):
    """[(weight key, next weight key)] for every hidden Linear of an MLP state dict, in order."""
    weights = [k for k in state if k.endswith(".weight")]
    return list(zip(weights[:-1], weights[1:]))


def unit_spread(state):
    """Per hidden layer: (units, the largest difference between any unit's incoming weights, bias and outgoing
    weights and unit 0's, the largest |weight| of the layer): 0 spread with a non-zero scale = identical units."""
    rows = []
    for key, after in hidden_layers(state):
        w, b, out = state[key], state[key.replace("weight", "bias")], state[after]        # (u, in), (u,), (o, u)
        spread = max(float(np.max(np.abs(w - w[:1]))), float(np.max(np.abs(b - b[0]))),
                     float(np.max(np.abs(out - out[:, :1]))))
        rows.append((key.split(".")[0], len(w), spread, float(max(np.max(np.abs(w)), np.max(np.abs(out))))))
    return rows


def train_one(job):
    """Train one (init, seed[, activation]); (summary row, final weights or None, symmetry rows)."""
    cfg, settings = job["cfg"], job["settings"]
    metrics, result = solutions.train(cfg, job["run_dir"], settings.eval_samples, job["snapshots"])
    row = {"scheme": cfg.init, "activation": cfg.activation or "relu", "dtype": cfg.dtype, "seed": cfg.seed,
           **metrics}
    if result is None:
        return row, None, []
    if not job["symmetry"]:
        return row, result.final_state, []
    if job["snapshots"]:
        states = zip(solutions.snapshot_steps(cfg, settings.limit_train, job["snapshots"]), result.snapshots,
                     strict=True)
    else:
        states = [(len(result.train_losses), result.final_state)]                       # one loss per step
    symmetry = [{"run": run_name(row), "step": step, "layer": layer, "units": units,
                 "spread": spread, "max_abs_weight": scale}
                for step, state in states for layer, units, spread, scale in unit_spread(state)]
    return row, result.final_state, symmetry


def run_name(row):
    """'activation-scheme-dtype-sSEED' of a run row."""
    return f"{row['activation']}-{row['scheme']}-{row['dtype']}-s{row['seed']}"


def plot_spread(runs, settings, out, w):
    """Test loss, test accuracy and training-subset loss of every seed, one column of dots per scheme."""
    fig, axes = harness.figure(cols=3)
    keys = (("test_loss", "final test loss", True), ("test_accuracy", "final test accuracy", False),
            ("train_loss", f"final loss on {settings.eval_samples} training images", True))
    for ax, (key, title, log_scale) in zip(axes, keys):
        harness.strip(ax, [[r[key] for r in runs if r["scheme"] == scheme and r["activation"] == "relu"
                            and not r["diverged"]] for scheme in settings.schemes], settings.schemes, log_scale)
        ax.set(title=title)
    return harness.save_figure(fig, f"{out}/init_spread.png", w, "init/spread")


def plot_distances(runs, dist, out, w):
    """The distance matrix of all solutions, grouped by scheme."""
    fig, (ax,) = harness.figure(size=(7, 6))
    off_diagonal = np.where(dist > 0, dist, np.nan)                                  # log scale: no zeros
    image = ax.imshow(off_diagonal, cmap="viridis", norm=LogNorm(np.nanmin(off_diagonal), np.nanmax(off_diagonal)))
    fig.colorbar(image, ax=ax, label="||θ_a - θ_b|| (log scale)")
    labels = [f"{r['scheme']} s{r['seed']}" for r in runs]
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=5)
    ax.set_yticks(range(len(labels)), labels, fontsize=5)
    ax.set(title="distance between solutions")
    return harness.save_figure(fig, f"{out}/init_distances.png", w, "init/distances")


def plot_barriers(pairs, paths, settings, out, w):
    """Loss along every straight path between two solutions of a scheme (raw solid, aligned dashed, Bézier
    dotted), and the raw and aligned barriers per scheme."""
    fig, (ax, barrier_ax) = harness.figure(cols=2)
    for k, scheme in enumerate(settings.schemes):
        mine = [path for p, path in zip(pairs, paths) if p["scheme"] == scheme]
        for n, path in enumerate(mine):
            ax.semilogy(path["raw"]["alpha"], path["raw"]["loss"], color=f"C{k}", alpha=0.4, linewidth=1,
                        label=scheme if n == 0 else None)
            for m, style in zip(settings.matchings, ("--", "-.")):
                ax.semilogy(path[m]["alpha"], path[m]["loss"], style, color=f"C{k}", alpha=0.4, linewidth=1)
            if path["bezier"] is not None:
                ax.semilogy(path["bezier"]["alpha"], path["bezier"]["loss"], ":", color=f"C{k}", linewidth=2)
    ax.set(title="between two solutions: straight raw (-), aligned (--), Bézier (:)",
           xlabel="alpha (0: seed a, 1: seed b)", ylabel=f"loss on {settings.eval_samples} training images")
    ax.legend(fontsize=8)
    kinds = [("barrier", "raw"), *((f"barrier_{m}", f"{m} aligned") for m in settings.matchings)]
    groups = [[p[key] for p in pairs if p["scheme"] == scheme] for scheme in settings.schemes for key, _ in kinds]
    labels = [f"{scheme}\n{name}" for scheme in settings.schemes for _, name in kinds]
    harness.strip(barrier_ax, groups, labels)
    barrier_ax.set(title="barrier: max loss on the path - mean of its ends", ylabel="barrier (symlog)")
    barrier_ax.set_yscale("symlog", linthresh=1e-3)
    return harness.save_figure(fig, f"{out}/init_barriers.png", w, "init/barriers")


def plot_symmetry(symmetry, out, w):
    """Largest difference between hidden units against step, per tracked run and hidden layer."""
    fig, (ax,) = harness.figure(size=(7, 4.5))
    tracked = sorted({r["run"] for r in symmetry if r["run"].startswith("sigmoid")})
    for k, run in enumerate(tracked):
        for style, layer in zip(("-o", "--s"), sorted({r["layer"] for r in symmetry})):
            mine = [r for r in symmetry if r["run"] == run and r["layer"] == layer]
            ax.plot([r["step"] for r in mine], [r["spread"] for r in mine], style, color=f"C{k}", markersize=3,
                    label=f"{run}, hidden layer {layer}")
    ax.set_yscale("symlog", linthresh=1e-16)
    ax.set(title="max difference between two hidden units' weights (0 = all units identical)", xlabel="step",
           ylabel="max |w_j - w_0| (symlog)")
    ax.legend(fontsize=8)
    return harness.save_figure(fig, f"{out}/init_zero_symmetry.png", w, "init/zero_symmetry")


def summarize(runs, pairs, symmetry, rounding, settings):
    lines = [f"barrier = highest loss on the path minus the mean of its two ends, {settings.path_steps} segments per "
             f"path; aligned = seed b's hidden units permuted to match seed a's ({' and '.join(settings.matchings)} "
             f"matching); Bézier = quadratic curve between the raw solutions, bend trained {settings.bezier_steps} "
             f"SGD steps (first pair of each scheme)"]
    for scheme in settings.schemes:
        mine = [r for r in runs if r["scheme"] == scheme and r["activation"] == "relu"]
        ok = [r for r in mine if not r["diverged"]]
        mine_pairs = [p for p in pairs if p["scheme"] == scheme]
        curved = [p for p in mine_pairs if np.isfinite(p["bezier_barrier"])]
        bezier = "none" if not curved else f"{curved[0]['bezier_barrier']:.3g} (highest loss " \
            f"{curved[0]['bezier_max_loss'] - max(curved[0]['bezier_loss_a'], curved[0]['bezier_loss_b']):.2g} " \
            f"above the higher end)"
        lines.append(f"{scheme}: {len(ok)}/{len(mine)} trained ({len(mine) - len(ok)} diverged); test loss "
                     f"{harness.stats([r['test_loss'] for r in ok])}; test accuracy "
                     f"{harness.stats([100 * r['test_accuracy'] for r in ok])} %; distance between solutions "
                     f"{harness.stats([p['distance'] for p in mine_pairs])}; barrier raw "
                     f"{harness.stats([p['barrier'] for p in mine_pairs])}; "
                     + "; ".join(f"{m} aligned {harness.stats([p[f'barrier_{m}'] for p in mine_pairs])}"
                                 for m in settings.matchings)
                     + f"; Bézier {bezier}")
    for run in sorted({r["run"] for r in symmetry}):
        last = max(r["step"] for r in symmetry if r["run"] == run)
        end = [r for r in symmetry if r["run"] == run and r["step"] == last]
        acc = next(r["test_accuracy"] for r in runs if run_name(r) == run)
        if run.startswith("sigmoid") or run.endswith("-s0"):
            lines.append(f"symmetry {run} after {last} steps: " + "; ".join(
                f"layer {r['layer']} ({r['units']} units) max unit difference {r['spread']:.3g}, largest |weight| "
                f"{r['max_abs_weight']:.3g}" for r in end) + f"; test accuracy {100 * acc:.2f}%")
    lines.append(symmetry_float32(symmetry))
    lines.append("where float32 breaks the symmetry: outputs of equal units on 128 training images, " + "; ".join(
        f"{dtype} " + ", ".join(f"{product} differ by up to {value:.2g}" for product, value in products.items())
        for dtype, products in rounding.items()))
    return lines


def symmetry_float32(symmetry):
    """One line: the float32 zero-init sigmoid run's largest unit difference along training, relative to its weights."""
    rows = sorted((r for r in symmetry if r["run"].startswith("sigmoid-zeros-float32")), key=lambda r: r["step"])
    broken = [r for r in rows if r["spread"] > 0]
    if not broken:
        return f"float32 zero-init sigmoid: units identical at all {len(rows)} snapshots"
    ratio = [r["spread"] / r["max_abs_weight"] for r in broken]
    return (f"float32 zero-init sigmoid: units first differ at step {broken[0]['step']}; max unit difference along "
            f"training " + ", ".join(f"step {r['step']} layer {r['layer']}: {r['spread']:.2g}" for r in rows
                                     if r["layer"] == rows[0]["layer"])
            + f"; relative to the largest |weight| {min(ratio):.2g} to {max(ratio):.2g}")


def training_jobs(settings, runs_dir):
    """Every (scheme, seed) of the relu mlp, then the tracked runs with snapshots; symmetry: unit spread measured."""
    jobs = [{"settings": settings, "cfg": config(settings, scheme, seed), "snapshots": 0,
             "symmetry": scheme == "zeros", "run_dir": f"{runs_dir}/{scheme.replace(':', '')}-s{seed}"}
            for scheme in settings.schemes for seed in range(settings.seeds)]
    return jobs + [{"settings": settings, "cfg": config(settings, init, 0, activation, dtype), "symmetry": True,
                    "snapshots": settings.symmetry_snapshots_per_epoch,
                    "run_dir": f"{runs_dir}/{activation}-{init}-{dtype}-s0"}
                   for activation, init, dtype in SYMMETRY_RUNS]


@harness.command
def main(argv=None):
    args, settings = harness.start(NAME, __doc__, FULL, QUICK, argv)
    jobs = training_jobs(settings, f"{args.out}/runs")
    harness.clear(args.out, args.overwrite)   # locks OUT; replaces its tb/ and runs/ (see --overwrite)
    with harness.workers(args) as sweep:
        harness.log(f"training {len(jobs)} networks")
        results = harness.run(sweep, train_one, jobs)
        runs, finals = [r[0] for r in results], [r[1] for r in results]
        main_runs = [i for i, r in enumerate(runs) if r["activation"] == "relu" and not r["diverged"]]
        groups = {scheme: [(i, jobs[i]["cfg"], finals[i]) for i in main_runs if runs[i]["scheme"] == scheme]
                  for scheme in settings.schemes}
        todo = solutions.path_jobs(groups, settings.eval_samples, settings.path_steps, settings.matchings,
                                   settings.bezier_steps)
        harness.log(f"{len(todo)} pairs of solutions: straight paths raw and aligned, Bézier curves")
        paths = harness.run(sweep, solutions.pair_paths, todo)
    symmetry = [row for r in results for row in r[2]]
    dist = solutions.distances([finals[i] for i in main_runs])
    row_of = {run: row for row, run in enumerate(main_runs)}                          # run index -> dist row
    pairs = []
    for job, path in zip(todo, paths):
        i, j = job["ij"]
        pairs.append({"scheme": job["key"], "seed_a": runs[i]["seed"], "seed_b": runs[j]["seed"],
                      "distance": float(dist[row_of[i], row_of[j]]), **solutions.pair_summary(path)})
    x = solutions.training_subset(jobs[0]["cfg"], 128)[0]
    rounding = {dtype: blas_rounding(x, dtype) for dtype in ("float32", "float64")}
    harness.write_csv(f"{args.out}/init_runs.csv", runs)
    harness.write_csv(f"{args.out}/init_pairs.csv", pairs)
    harness.write_csv(f"{args.out}/init_symmetry.csv", symmetry)
    with harness.writer(args.out) as w:
        for r in runs:
            if r["activation"] == "relu" and not r["diverged"]:
                w.add_scalar(f"final_test_accuracy/{r['scheme']}", r["test_accuracy"], r["seed"])
                w.add_scalar(f"final_test_loss/{r['scheme']}", r["test_loss"], r["seed"])
        for n, p in enumerate(pairs):
            w.add_scalar(f"barrier/{p['scheme']}", p["barrier"], n)
            for m in settings.matchings:
                w.add_scalar(f"barrier_{m}_aligned/{p['scheme']}", p[f"barrier_{m}"], n)
        for r in symmetry:
            w.add_scalar(f"unit_spread/{r['run']}_layer{r['layer']}", r["spread"], r["step"])
        pngs = [plot_spread(runs, settings, args.out, w),
                plot_distances([runs[i] for i in main_runs], dist, args.out, w),
                plot_barriers(pairs, paths, settings, args.out, w), plot_symmetry(symmetry, args.out, w)]
        harness.finish(w, args.out, summarize(runs, pairs, symmetry, rounding, settings), pngs, args.started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
