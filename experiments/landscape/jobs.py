"""The tasks of a landscape sweep: one (scheme, seed) run's landscape, the path between two solutions (a block of
grid points: landscape.spread)."""
import os

import manual
from experiments import checkpoint, data, devices
from experiments.config import Config, arch_of, batch_size_of, flat_input
from experiments.exits import FAILED
from experiments.landscape import align, curvature, curves, pairs, surfaces, tb
from experiments.landscape.directions import random_directions
from experiments.landscape.spread import evaluation_data, evaluator
from experiments.sweep import report
from experiments.train.loop import SNAPSHOTS, train_and_evaluate

ALIGNMENTS = {"weight": ("weight",), "activation": ("activation",), "both": ("weight", "activation"), "none": ()}
CURVATURE = {"tol": 1e-3, "samples": 10, "steps": 20, "starts": 1}   # eigsh tolerance, Hutchinson probes, SLQ


def run_name(cfg):
    """The TensorBoard run of a config: scheme and seed, e.g. kaiming_normal-s0."""
    return f"{cfg.init.replace(':', '')}-s{cfg.seed}"


def trained(cfg, settings):
    """(init, final, snapshots, test loss, test accuracy) from training cfg now."""
    run_dir = os.path.join(settings.train_dir, run_name(cfg))
    result = train_and_evaluate(cfg, run_dir, snapshots_per_epoch=settings.snapshots_per_epoch, quiet=True)
    r = result[cfg.backends[0]]
    return r.init_state, r.final_state, r.snapshots, r.test_loss, r.test_accuracy


def finished_config(run_dir):
    """The Config a finished run was trained with."""
    return Config.from_file(os.path.join(run_dir, "config.json"))


class RunError(ValueError):
    """A --from-runs run whose config.json or final.npz cannot be used."""

    exit_code = FAILED


def check_finished(run_dir):
    """The Config of a finished run, after checking that its config.json reads and its final.npz holds the
    parameters of that config's architecture (names, shapes, dtype); RunError naming the file otherwise."""
    path = os.path.join(run_dir, "config.json")
    try:
        cfg = finished_config(run_dir)
    except OSError as err:
        raise RunError(f"{path}: {err.strerror}") from None
    except (ValueError, TypeError) as err:   # json.JSONDecodeError is a ValueError
        raise RunError(f"{path}: not a run's config ({err})") from None
    path = os.path.join(run_dir, "final.npz")
    final = checkpoint.load_arrays(path)
    expected = manual.build(arch_of(cfg), init="zeros", dtype=cfg.dtype).state_dict()
    wrong = sorted(set(final) ^ set(expected)) or [k for k in expected if (final[k].shape, final[k].dtype) !=
                                                   (expected[k].shape, expected[k].dtype)]
    if wrong:
        raise RunError(f"{path}: not the parameters of {cfg.arch} in {cfg.dtype} as its config.json says "
                       f"(first mismatch: {wrong[0]})")
    return cfg


def finished(run_dir):
    """(cfg, init, final, snapshots) of a finished run directory; the init is rebuilt from its config."""
    cfg = finished_config(run_dir)
    init = manual.build(arch_of(cfg), init=cfg.init, seed=cfg.seed, dtype=cfg.dtype).state_dict()
    final = checkpoint.load_arrays(os.path.join(run_dir, "final.npz"))
    path = os.path.join(run_dir, cfg.backends[0], SNAPSHOTS)
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
    if settings.curvature_samples:
        found = curvatures(cfg, {"init": init, "final": final}, settings)
        metrics.update(curvature_metrics(found))
        pngs["density"] = tb.write_curvature(settings.logdir, run_name(cfg), found)
    summary = {"run": run_name(cfg), "scheme": cfg.init, "seed": cfg.seed, **metrics, "test_loss": test_loss,
               "test_accuracy": test_acc, "distance": surfaces.distance(init, final),
               "path_length": surfaces.path_length(snapshots), "pngs": pngs}
    if ALIGNMENTS[settings.align]:
        summary["planes"] = planes(cfg.seed, final, result, snapshots)
    return summary, cfg, final


def curvatures(cfg, states, settings):
    """{name: curvature.summary} of the mean cross-entropy's Hessian at each of states, on the first
    settings.curvature_samples evaluation images (at most settings.eval_samples)."""
    arch = arch_of(cfg)
    x, y = evaluation_data(flat_input(arch), cfg.dtype, settings.eval_samples, cfg.data_dir or None)
    n = min(settings.curvature_samples, len(x))
    device = devices.of(settings.curvature_backend, settings.device)
    return {name: curvature.summary(curvature.operator(settings.curvature_backend, arch, state, x[:n], y[:n],
                                                       dtype=cfg.dtype, device=device), seed=cfg.seed, **CURVATURE)
            for name, state in states.items()}


def curvature_metrics(found):
    """λ_max, λ_min, the trace and its 95% interval's half-width of each curvature summary: the final weights'
    unsuffixed, the others' suffixed with _<name> (lambda_max_init)."""
    metrics = {}
    for name, s in found.items():
        suffix = "" if name == "final" else f"_{name}"
        low, high = s["hutchinson"]["ci"]
        metrics.update({f"lambda_max{suffix}": s["lambda_max"], f"lambda_min{suffix}": s["lambda_min"],
                        f"trace{suffix}": s["hutchinson"]["trace"], f"trace_ci95{suffix}": (high - low) / 2})
    return metrics


def planes(seed, final, result, snapshots):
    """The run's two planes, for drawing aligned partners on them: {kind: (surface, directions)}, the random
    plane's directions drawn again from its seed as surfaces.random_surface draws them, the PCA plane's from the
    snapshots."""
    out = {"surface": (result["surface"], random_directions(final, 2, seed=[seed, surfaces.SURFACE_SEED]))}
    if result.get("pca"):
        out["pca"] = (result["pca"], surfaces.pca_plane(snapshots)[0])
    return out


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
    """The paths between two solutions a and b, drawn: (names, {"paths": {"raw": a -> b, <method>: a -> b aligned
    to a by each alignment of settings.align, "bezier": the trained curve a -> b when settings.bezier_steps},
    "perms": {method: b's permutations}, "barriers": pairs.barriers, "png": the pair's figure (tb.draw_pair)}).
    Progress: report() per point."""
    settings, cfg, a, b = job["settings"], job["cfg"], job["a"], job["b"]
    arch = arch_of(cfg)
    alphas = surfaces.path_alphas(settings.resolution - 1)
    aligned, perms = {}, {}
    x, _ = evaluation_data(flat_input(arch), cfg.dtype, settings.eval_samples, cfg.data_dir or None)   # cached
    for method in ALIGNMENTS[settings.align]:
        aligned[method], perms[method], _ = align.align(method, arch, a, b, x, seed=cfg.seed)
    bend = bezier_bend(arch, a, b, cfg, settings) if settings.bezier_steps else None
    evaluate = evaluator(cfg, settings)
    paths = {"raw": surfaces.interpolate(evaluate, a, b, alphas, report)}
    for method, partner in aligned.items():
        paths[method] = surfaces.interpolate(evaluate, a, partner, alphas, report)
    if bend is not None:
        paths["bezier"] = curves.bezier_path(evaluate, a, bend, b, alphas, report)
    found = pairs.barriers(paths)
    png = tb.draw_pair(settings.logdir, *job["names"], pairs.legends(paths, found))
    return job["names"], {"paths": paths, "perms": perms, "barriers": found, "png": png}


def bezier_bend(arch, a, b, cfg, settings):
    """The bend of the quadratic Bezier curve a -> b, trained for settings.bezier_steps SGD steps on the run's
    training backend and training subset (--limit-train), with its learning rate, momentum and batch size."""
    x, y = data.load("train", cfg.data_dir or None, dtype=cfg.dtype, flatten=flat_input(arch),
                     limit=cfg.limit_train or None)
    bend, _ = curves.train_bezier(arch, a, b, x, y, settings.bezier_steps, cfg.lr, batch_size_of(cfg, len(x)),
                                  cfg.seed, backend=cfg.backends[0], momentum=cfg.momentum)
    return bend
