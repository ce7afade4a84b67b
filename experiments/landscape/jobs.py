"""The tasks of a landscape sweep: one (scheme, seed) run's landscape, the path between two solutions, a block of
grid points."""
import functools
import os
from dataclasses import dataclass

import numpy as np

import manual
from experiments import checkpoint, data
from experiments.config import Config, arch_of, flat_input
from experiments.landscape import surfaces, tb
from experiments.landscape.evaluate import Evaluator, as_coords
from experiments.sweep import report
from experiments.train.loop import SNAPSHOTS, train_and_evaluate


@dataclass(frozen=True)
class Settings:
    """What every job shares: how to evaluate, how finely, and where things go."""
    backend: str = "manual"         # evaluation backend
    resolution: int = 41            # grid points per axis (odd); 1-D paths get resolution - 1 steps over [0, 1]
    span: float = 1.0               # the random-direction surface covers [-span, span]^2
    eval_samples: int = 10_000      # the first N test images
    sharpness_radius: float = 0.25  # filter-normalised radius of the sharpness figure
    sharpness_dirs: int = 10        # random directions (each at +-radius) averaged for it
    snapshots_per_epoch: int = 10   # parameter snapshots kept while training, for the PCA plane
    logdir: str = "runs/landscape"
    train_dir: str = "runs/landscape-train"


def run_name(cfg):
    """The TensorBoard run of a config: scheme and seed, e.g. kaiming_normal-s0."""
    return f"{cfg.init.replace(':', '')}-s{cfg.seed}"


@functools.lru_cache(maxsize=2)
def evaluation_data(flatten, dtype, samples, root):
    """The fixed evaluation subset: the first `samples` test images."""
    return data.load("test", root, dtype=dtype, flatten=flatten, limit=samples)


def evaluator(cfg, settings, sweep=None):
    """An Evaluator for cfg's architecture on the evaluation subset (read from cfg's data directory here), in
    cfg's dtype; a SpreadEvaluator when a sweep with more than one worker is given."""
    if sweep is not None and sweep.size > 1:
        return SpreadEvaluator(sweep, cfg, settings)
    arch = arch_of(cfg)
    x, y = evaluation_data(flat_input(arch), cfg.dtype, settings.eval_samples, cfg.data_dir or None)
    return Evaluator(arch, x, y, backend=settings.backend, dtype=cfg.dtype)


def block(job):
    """(loss, accuracy) at one block of a SpreadEvaluator's points."""
    return evaluator(job["cfg"], job["settings"])(job["centre"], job["directions"], job["coords"], report)


class SpreadEvaluator:
    """An Evaluator whose points are split into one block per worker of a sweep, each block a task that reads the
    evaluation subset on its worker (a point's result does not depend on the block it is in)."""

    def __init__(self, sweep, cfg, settings):
        self.sweep, self.cfg, self.settings = sweep, cfg, settings

    def __call__(self, centre, directions=(), coords=None, progress=None):
        coords = as_coords(coords, len(directions))
        blocks = np.array_split(coords, min(self.sweep.size, len(coords)))
        parts = self.sweep.map(block, [{"cfg": self.cfg, "settings": self.settings, "centre": centre,
                                        "directions": list(directions), "coords": b} for b in blocks], progress)
        return tuple(np.concatenate([part[i] for part in parts]) for i in range(2))


def trained(cfg, settings):
    """(init, final, snapshots, test loss, test accuracy) from training cfg now."""
    run_dir = os.path.join(settings.train_dir, run_name(cfg))
    result = train_and_evaluate(cfg, run_dir, snapshots_per_epoch=settings.snapshots_per_epoch, quiet=True)
    r = result[cfg.backends[0]]
    return r.init_state, r.final_state, r.snapshots, r.test_loss, r.test_accuracy


def finished_config(run_dir):
    """The Config a finished run was trained with."""
    return Config.from_file(os.path.join(run_dir, "config.json"))


def finished(run_dir):
    """(cfg, init, final, snapshots) of a finished run directory; the init is rebuilt from its config."""
    cfg = finished_config(run_dir)
    init = manual.build(arch_of(cfg), init=cfg.init, seed=cfg.seed, dtype=cfg.dtype).state_dict()
    final = checkpoint.load_arrays(os.path.join(run_dir, "final.npz"))
    path = os.path.join(run_dir, SNAPSHOTS)
    snapshots = [g for _, g in sorted(checkpoint.load(path).items())] if os.path.exists(path) else [init, final]
    return cfg, init, final, snapshots


def landscape(job, sweep=None):
    """Train (or load) one run, measure its landscape (over sweep's workers when given), write its TensorBoard
    run; (summary, cfg, final state). Progress: report() per grid point."""
    settings = job["settings"]
    if job.get("run_dir"):
        cfg, init, final, snapshots = finished(job["run_dir"])
        test_loss = test_acc = float("nan")
    else:
        cfg = job["cfg"]
        init, final, snapshots, test_loss, test_acc = trained(cfg, settings)
    result, metrics = measure(evaluator(cfg, settings, sweep), cfg.seed, init, final, snapshots, settings, report)
    pngs = tb.write_run(settings.logdir, run_name(cfg), result)
    summary = {"run": run_name(cfg), "scheme": cfg.init, "seed": cfg.seed, **metrics, "test_loss": test_loss,
               "test_accuracy": test_acc, "distance": surfaces.distance(init, final),
               "path_length": surfaces.path_length(snapshots), "pngs": pngs}
    return summary, cfg, final


def measure(evaluate, seed, init, final, snapshots, settings, progress):
    """(landscape result for tb.write_run, {final_loss, final_accuracy, init_loss, sharpness}) of one run."""
    alphas = surfaces.path_alphas(settings.resolution - 1)
    loss, acc = evaluate(final, progress=progress)
    interp = surfaces.interpolate(evaluate, init, final, alphas, progress)
    result = {"init": init, "final": final, "interp": interp,
              "surface": surfaces.random_surface(evaluate, final, seed, settings.span, settings.resolution,
                                                 progress=progress)}
    try:
        result["pca"] = surfaces.pca_surface(evaluate, snapshots, settings.resolution, progress=progress)
    except ValueError as err:
        result["pca_skipped"] = f"no PCA surface: {err}"
        progress(settings.resolution ** 2)
    sharp = surfaces.sharpness(evaluate, final, loss[0], seed, settings.sharpness_radius, settings.sharpness_dirs,
                               progress=progress)
    metrics = {"final_loss": float(loss[0]), "final_accuracy": float(acc[0]),
               "init_loss": float(interp["loss"][alphas == 0][0]), "sharpness": sharp}
    return result, metrics


def pair(job):
    """The 1-D path between two solutions: (names, path). Progress: report() per point."""
    path = surfaces.interpolate(evaluator(job["cfg"], job["settings"]), job["a"], job["b"],
                                surfaces.path_alphas(job["settings"].resolution - 1), report)
    return job["names"], path
