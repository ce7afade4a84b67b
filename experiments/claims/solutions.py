"""Training runs as comparable solutions: train one config, evaluate it on a fixed training subset, distances,
straight paths between solutions raw and aligned modulo hidden-unit permutations, Bézier curves between them, and
where train_and_evaluate's snapshots fall.

A barrier, wherever one is printed, is the highest loss on the path minus the mean of the losses at its two ends
(surfaces.barrier)."""
import itertools

import numpy as np

from experiments import data
from experiments.backends import Diverged
from experiments.claims import harness
from experiments.config import arch_of, batch_size_of
from experiments.landscape import align, curves, surfaces
from experiments.landscape.evaluate import Evaluator
from experiments.train.loop import snapshot_batches, train_and_evaluate

LR_SCHEDULE = "constant"   # every claims run: the notes' gradient descent, one learning rate throughout


def snapshot_steps(cfg, n, per_epoch):
    """The global step of each snapshot train_and_evaluate takes: the init, then per_epoch per epoch."""
    total = data.num_batches(n, batch_size_of(cfg, n))
    inside = sorted(b for b in snapshot_batches(cfg, n, per_epoch) if 0 < b < total)   # as run_epoch takes them
    return [0] + [e * total + b for e in range(cfg.epochs) for b in (*inside, total)]


MATCHINGS = align.METHODS   # how solution b may be aligned to solution a before its straight path


def training_subset(cfg, samples):
    """(x, y): the first `samples` training images in cfg's dtype."""
    return data.load("train", cfg.data_dir or None, dtype=cfg.dtype, limit=samples)


def train_evaluator(cfg, samples):
    """The landscape tools' Evaluator (mean loss, accuracy at given weights) on the first `samples` training images."""
    x, y = training_subset(cfg, samples)
    return Evaluator(arch_of(cfg), x, y, backend="manual", dtype=cfg.dtype)


def train(cfg, run_dir, eval_samples, snapshots_per_epoch=0):
    """(metrics, Result or None): train cfg's one backend with train_and_evaluate; a divergence is a result too."""
    # metrics: diverged, test loss and accuracy, loss and accuracy on the first eval_samples training images
    try:
        result = train_and_evaluate(cfg, run_dir, snapshots_per_epoch=snapshots_per_epoch, quiet=True)[cfg.backend]
    except Diverged as err:
        harness.log(f"{run_dir}: diverged ({err})")
        return {"diverged": True, **dict.fromkeys(("test_loss", "test_accuracy", "train_loss", "train_accuracy"),
                                                  float("nan"))}, None
    loss, acc = train_evaluator(cfg, eval_samples)(result.final_state)
    return {"diverged": False, "test_loss": result.test_loss, "test_accuracy": result.test_accuracy,
            "train_loss": float(loss[0]), "train_accuracy": float(acc[0])}, result


def pair_paths(job):
    """{"raw": straight path a -> b, <matching>: straight path a -> b aligned to a, "sweeps": {matching: n},
    "bezier": the loss along a trained quadratic Bézier curve between the raw a and b, or None}."""
    # a, b: state dicts of job["cfg"]'s net; losses on the first job["samples"] training images, job["steps"]
    # segments per path; the bend trained for job["bezier_steps"] SGD steps (0: none) on cfg's training subset
    cfg, a, b = job["cfg"], job["a"], job["b"]
    arch, (x, y) = arch_of(cfg), training_subset(cfg, job["samples"])
    evaluate = Evaluator(arch, x, y, backend="manual", dtype=cfg.dtype)
    alphas = surfaces.path_alphas(job["steps"], extend=0)
    out = {"raw": surfaces.interpolate(evaluate, a, b, alphas), "sweeps": {}, "bezier": None}
    for matching in job["matchings"]:
        state, _, out["sweeps"][matching] = align.align(matching, arch, a, b, x)
        out[matching] = surfaces.interpolate(evaluate, a, state, alphas)
    if job["bezier_steps"]:
        xt, yt = training_subset(cfg, cfg.limit_train)
        c, _ = curves.train_bezier(arch, a, b, xt, yt, job["bezier_steps"], cfg.lr, batch_size_of(cfg, len(xt)),
                                   cfg.seed, momentum=cfg.momentum)
        out["bezier"] = curves.bezier_path(evaluate, a, c, b, alphas)
    return out


def path_summary(path, prefix=""):
    """{"barrier", "loss_a", "loss_b", "max_loss"} of a path (keys prefixed): its barrier (highest loss on the
    path minus the mean of its ends), end losses and highest loss; NaNs for no path."""
    keys = [prefix + k for k in ("barrier", "loss_a", "loss_b", "max_loss")]
    if path is None:
        return dict.fromkeys(keys, float("nan"))
    values = surfaces.barrier(path), path["loss"][0], path["loss"][-1], path["loss"].max()
    return {k: float(v) for k, v in zip(keys, values)}


def pair_summary(paths):
    """One flat dict of a pair_paths result: raw path_summary, then barrier_<matching>, sweeps_<matching>, and the
    Bézier curve's bezier_* summary (NaN where no curve was trained)."""
    row = path_summary(paths["raw"])
    for matching, sweeps in paths["sweeps"].items():
        row[f"barrier_{matching}"] = surfaces.barrier(paths[matching])
        if matching == "weight":
            row["weight_matching_sweeps"] = sweeps
    return {**row, **path_summary(paths["bezier"], "bezier_")}


def path_jobs(groups, samples, steps, matchings=(), bezier_steps=0):
    """One pair_paths job per pair within each group, the first pair of each group with a Bézier curve of
    bezier_steps steps (0: none); groups: {key: [(run index, cfg, final state)]}."""
    jobs = []
    for key, members in groups.items():
        for n, ((i, cfg, a), (j, _, b)) in enumerate(itertools.combinations(members, 2)):
            jobs.append({"key": key, "ij": (i, j), "cfg": cfg, "a": a, "b": b, "samples": samples, "steps": steps,
                         "matchings": tuple(matchings), "bezier_steps": bezier_steps if n == 0 else 0})
    return jobs


def loglog_slope(xs, ys):
    """(slope, its standard error, points): least squares of log ys on log xs over the finite positive ys; the
    slope is NaN below 2 points, its error below 3."""
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    keep = np.isfinite(ys) & (ys > 0)
    lx, ly = np.log(xs[keep]), np.log(ys[keep])
    n = len(lx)
    if n < 2:
        return float("nan"), float("nan"), n
    slope, intercept = np.polyfit(lx, ly, 1)
    if n < 3:
        return float(slope), float("nan"), n
    residual = ly - (slope * lx + intercept)
    stderr = np.sqrt(residual @ residual / (n - 2) / np.sum((lx - lx.mean()) ** 2))
    return float(slope), float(stderr), n


def distances(states):
    """The landscape tools' Euclidean distance between every two state dicts, as a symmetric (S, S) matrix."""
    out = np.zeros((len(states), len(states)))
    for i, j in itertools.combinations(range(len(states)), 2):
        out[i, j] = out[j, i] = surfaces.distance(states[i], states[j])
    return out


def norm(state):
    """The Euclidean norm of a state dict's tensors laid end to end, in float64."""
    return float(np.sqrt(sum(np.sum(np.square(v, dtype=np.float64)) for v in state.values())))
