"""The work a worker process does: one (scheme, seed) run's landscape, or the path between two solutions."""
import contextlib
import functools
import os
from dataclasses import dataclass

import manual
from experiments import checkpoint, data
from experiments.config import Config, arch_of, flat_input
from experiments.landscape import surfaces, tb
from experiments.landscape.evaluate import Evaluator
from experiments.landscape.parallel import ParallelEvaluator
from experiments.progress import Progress
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
    eval_workers: int = 1           # processes sharing each evaluation (when the runs themselves are not parallel)
    logdir: str = "runs/landscape"
    train_dir: str = "runs/landscape-train"


SINK = None   # where this process's progress goes: a queue's put in a pool worker, a tqdm bar's update in the parent


def init_worker(sink, threads):
    """Pool initializer: where progress goes, and how many threads torch may use."""
    import torch

    global SINK
    SINK = sink
    torch.set_num_threads(threads)


def run_name(cfg):
    """The TensorBoard run of a config: scheme and seed, e.g. kaiming_normal-s0."""
    return f"{cfg.init.replace(':', '')}-s{cfg.seed}"


@functools.lru_cache(maxsize=2)
def evaluation_data(flatten, dtype, samples, root):
    """The fixed evaluation subset: the first `samples` test images."""
    return data.load("test", root, dtype=dtype, flatten=flatten, limit=samples)


def evaluator(cfg, settings):
    """A context giving an Evaluator for cfg's architecture on the evaluation subset, in cfg's dtype
    (a ParallelEvaluator over settings.eval_workers processes when that is above 1)."""
    arch = arch_of(cfg)
    x, y = evaluation_data(flat_input(arch), cfg.dtype, settings.eval_samples, cfg.data_dir or None)
    if settings.eval_workers > 1:
        return ParallelEvaluator(settings.eval_workers, arch, x, y, backend=settings.backend, dtype=cfg.dtype)
    return contextlib.nullcontext(Evaluator(arch, x, y, backend=settings.backend, dtype=cfg.dtype))


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
    path = os.path.join(run_dir, cfg.backends[0], SNAPSHOTS)
    snapshots = [g for _, g in sorted(checkpoint.load(path).items())] if os.path.exists(path) else [init, final]
    return cfg, init, final, snapshots


def landscape(job):
    """Train (or load) one run, measure its landscape, write its TensorBoard run; (summary, final state)."""
    settings, progress = job["settings"], Progress(SINK)
    if job.get("run_dir"):
        cfg, init, final, snapshots = finished(job["run_dir"])
        test_loss = test_acc = float("nan")
    else:
        cfg = job["cfg"]
        init, final, snapshots, test_loss, test_acc = trained(cfg, settings)
    with evaluator(cfg, settings) as evaluate:
        result, metrics = measure(evaluate, cfg.seed, init, final, snapshots, settings, progress)
    pngs = tb.write_run(settings.logdir, run_name(cfg), result)
    progress.flush()
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
    """The 1-D path between two solutions: (names, path)."""
    progress = Progress(SINK)
    with evaluator(job["cfg"], job["settings"]) as evaluate:
        path = surfaces.interpolate(evaluate, job["a"], job["b"], surfaces.path_alphas(job["settings"].resolution - 1),
                                    progress)
    progress.flush()
    return job["names"], path
