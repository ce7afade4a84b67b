"""Training runs as comparable solutions: train one config, evaluate it on a fixed training subset, distances and
straight paths between solutions (the landscape tools' interpolation), and where train_and_evaluate's snapshots fall."""
import itertools

import numpy as np

from experiments import data
from experiments.backends import Diverged
from experiments.claims import harness
from experiments.config import arch_of, batch_size_of
from experiments.landscape import surfaces
from experiments.landscape.evaluate import Evaluator
from experiments.train.loop import snapshot_batches, train_and_evaluate

LR_SCHEDULE = "constant"   # every claims run: the notes' gradient descent, one learning rate throughout


def snapshot_steps(cfg, n, per_epoch):
    """The global step of each snapshot train_and_evaluate takes: the init, then per_epoch per epoch."""
    total = data.num_batches(n, batch_size_of(cfg, n))
    inside = sorted(b for b in snapshot_batches(cfg, n, per_epoch) if 0 < b < total)   # as run_epoch takes them
    return [0] + [e * total + b for e in range(cfg.epochs) for b in (*inside, total)]


def train_evaluator(cfg, samples):
    """The landscape tools' Evaluator (mean loss, accuracy at given weights) on the first `samples` training images."""
    x, y = data.load("train", cfg.data_dir or None, dtype=cfg.dtype, limit=samples)
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


def straight_path(job):
    """{"alpha", "loss", "accuracy"} along the landscape tools' straight path from job["a"] to job["b"]."""
    # a, b: state dicts of job["cfg"]'s net; loss on the first job["samples"] training images, job["steps"] segments
    evaluate = train_evaluator(job["cfg"], job["samples"])
    return surfaces.interpolate(evaluate, job["a"], job["b"], surfaces.path_alphas(job["steps"], extend=0))


def path_summary(path):
    """{"barrier", "loss_a", "loss_b", "max_loss"} of a straight path: its barrier, end losses and highest loss."""
    return {"barrier": surfaces.barrier(path), "loss_a": float(path["loss"][0]), "loss_b": float(path["loss"][-1]),
            "max_loss": float(path["loss"].max())}


def path_jobs(groups, samples, steps):
    """One straight_path job per pair within each group; groups: {key: [(run index, cfg, final state)]}."""
    jobs = []
    for key, members in groups.items():
        for (i, cfg, a), (j, _, b) in itertools.combinations(members, 2):
            jobs.append({"key": key, "ij": (i, j), "cfg": cfg, "a": a, "b": b, "samples": samples, "steps": steps})
    return jobs


def distances(states):
    """The landscape tools' Euclidean distance between every two state dicts, as a symmetric (S, S) matrix."""
    out = np.zeros((len(states), len(states)))
    for i, j in itertools.combinations(range(len(states)), 2):
        out[i, j] = out[j, i] = surfaces.distance(states[i], states[j])
    return out


def norm(state):
    """The Euclidean norm of a state dict's tensors laid end to end, in float64."""
    return float(np.sqrt(sum(np.sum(np.square(v, dtype=np.float64)) for v in state.values())))
