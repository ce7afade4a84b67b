"""Landscape points over a sweep's workers: the settings every landscape job shares, the evaluation subset, and
an Evaluator here or a SpreadEvaluator (one block of points per worker). A block's worker imports only this, the
evaluator and the data: no matplotlib, scipy or training loop."""
import functools
from dataclasses import dataclass

import numpy as np

from experiments import data, devices
from experiments.config import arch_of, flat_input
from experiments.landscape.evaluate import Evaluator, as_coords
from experiments.sweep import report


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
    curvature_samples: int = 1000   # the first N evaluation images for the Hessian's spectrum; 0 = off
    curvature_backend: str = "manual"   # backend of the Hessian-vector products
    device: str = "cpu"             # cpu | cuda: where the torch evaluation and curvature backends compute
    align: str = "weight"           # weight | activation | both | none: the pairs' straight paths after alignment
    bezier_steps: int = 0           # SGD steps training each pair's Bezier bend; 0 = no curve
    logdir: str = "runs/landscape"
    train_dir: str = "runs/landscape-train"


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
    return Evaluator(arch, x, y, backend=settings.backend, dtype=cfg.dtype, device=devices.of(settings.backend,
                                                                                             settings.device))


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
