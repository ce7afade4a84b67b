"""`python -m experiments.landscape` (and `backprop-lab landscape`): loss landscapes across initializations."""
import dataclasses
import itertools
import os
import shutil
import sys

from experiments.backends import TRAINERS
from experiments.config import Config
from experiments.events import serve_command
from experiments.flags import Parser, add_config_flags, positive_float, positive_int
from experiments.io import write_json
from experiments.landscape import jobs, parallel, surfaces, tb
from experiments.landscape import EVALUATION_BACKENDS
from experiments.progress import FirstUpdateClock
from experiments.train.loop import hparams_of


def parser(prog="python -m experiments.landscape"):
    """The flags of the landscape command."""
    p = Parser(prog=prog,
               description="Train one network per (initialization scheme, seed), then measure its loss landscape: "
                           "the straight path init -> solution, a filter-normalised random plane and the PCA plane "
                           "of the trajectory around the solution, sharpness, distance travelled, and the path and "
                           "barrier between every pair of solutions. Everything goes to TensorBoard under --logdir "
                           "(open it with: make tensorboard LOGDIR=LOGDIR).")
    p.add_argument("--inits", nargs="+", metavar="SCHEME",
                   help="initialization schemes to compare (manual.init names, e.g. kaiming_normal xavier_uniform "
                        "normal:0.01); default: kaiming_normal xavier_uniform")
    p.add_argument("--seeds", nargs="+", type=int, metavar="SEED",
                   help="seeds per scheme (initial weights and batch order); default: 0 1")
    p.add_argument("--backend", dest="eval_backend", choices=EVALUATION_BACKENDS, default="manual",
                   help="backend that evaluates the landscape points (default: manual)")
    p.add_argument("--train-backend", choices=TRAINERS,
                   help="backend that trains each run (default: manual)")
    add_config_flags(p, skip=("backend", "init", "seed"))
    p.add_argument("--from-runs", nargs="+", metavar="DIR",
                   help="reuse finished training runs instead of training: run directories (config.json + "
                        "final.npz, and <backend>/snapshots.npz for the PCA plane) or folders holding them")
    p.add_argument("--snapshots-per-epoch", type=positive_int,
                   help="parameter snapshots kept per training epoch, for the PCA plane (default: 10)")
    p.add_argument("--resolution", type=positive_int, default=41,
                   help="grid points per axis of each surface, odd so the solution is the centre; the 1-D paths "
                        "take resolution-1 steps from 0 to 1 and a quarter more past each end (default: 41)")
    p.add_argument("--span", type=positive_float, default=1.0,
                   help="the random-direction surface covers [-span, span]^2 in filter-normalised units "
                        "(default: 1.0)")
    p.add_argument("--eval-samples", type=positive_int, default=10_000,
                   help="evaluate every point on the first N test images (default: 10000, the whole test set)")
    p.add_argument("--sharpness-radius", type=positive_float, default=0.25,
                   help="sharpness = mean loss rise at this filter-normalised radius (default: 0.25)")
    p.add_argument("--sharpness-dirs", type=positive_int, default=10,
                   help="random directions (each taken both ways) averaged for the sharpness (default: 10)")
    p.add_argument("--logdir", default="runs/landscape",
                   help="TensorBoard log directory: one run per (scheme, seed) and one 'cross_init' run; contour "
                        "PNGs in LOGDIR/png (default: runs/landscape)")
    p.add_argument("--train-dir", default=None,
                   help="where the training runs go (default: LOGDIR-train)")
    p.add_argument("--workers", type=positive_int, default=parallel.cores(),
                   help="worker processes: each takes one (scheme, seed) run at a time, or they share the grid "
                        "points of a lone run (default: the number of cores)")
    p.add_argument("--overwrite", action="store_true",
                   help="delete earlier results of the same runs first (their training runs and TensorBoard runs)")
    return p


TRAINING = {"inits": ["kaiming_normal", "xavier_uniform"], "seeds": [0, 1], "train_backend": "manual",
            "snapshots_per_epoch": 10}   # flags (and their defaults) that only apply when training


def plan(p, args):
    """(Settings, landscape jobs, their output directories), or a one-line error for flags that do not fit."""
    if args.resolution < 3 or args.resolution % 2 == 0:
        p.error(f"--resolution must be odd and >= 3 so the grid has a centre, got {args.resolution}")
    if args.eval_samples > 10_000:
        p.error(f"--eval-samples: the test set has 10000 images, got {args.eval_samples}")
    training = [k for k, v in vars(args).items() if v is not None and (
        k in TRAINING or k in Config.__dataclass_fields__ and k != "data_dir")]
    if args.from_runs and training:
        p.error(f"--from-runs reuses finished runs: drop --{training[0].replace('_', '-')}")
    for k, v in TRAINING.items():
        setattr(args, k, v if getattr(args, k) is None else getattr(args, k))
    settings = jobs.Settings(
        backend=args.eval_backend, resolution=args.resolution, span=args.span, eval_samples=args.eval_samples,
        sharpness_radius=args.sharpness_radius, sharpness_dirs=args.sharpness_dirs,
        snapshots_per_epoch=args.snapshots_per_epoch, logdir=args.logdir,
        train_dir=args.train_dir or args.logdir.rstrip("/") + "-train")
    if args.from_runs:
        runs = found_runs(p, args.from_runs)
        cfgs = [jobs.finished_config(r) for r in runs]
        todo = [{"settings": settings, "run_dir": r} for r in runs]
        outputs = []
    else:
        given = {k: v for k, v in vars(args).items() if k in Config.__dataclass_fields__}
        try:
            cfgs = [Config(**given, backend=args.train_backend, init=init, seed=seed)
                    for init, seed in itertools.product(args.inits, args.seeds)]
        except ValueError as err:
            p.error(str(err))
        if 1 + args.snapshots_per_epoch * cfgs[0].epochs < 4:
            p.error("the PCA plane needs at least 3 snapshots after the initialization: "
                    "raise --snapshots-per-epoch or --epochs")
        todo = [{"settings": settings, "cfg": cfg} for cfg in cfgs]
        outputs = [os.path.join(settings.train_dir, jobs.run_name(c)) for c in cfgs]
    names = [jobs.run_name(c) for c in cfgs]
    if len(set(names)) < len(names):
        p.error(f"two runs share a name: {', '.join(sorted(n for n in names if names.count(n) > 1))}")
    if len({(c.arch, c.hidden, c.activation, c.dtype) for c in cfgs}) > 1:
        p.error("all runs must share one architecture and dtype to be compared")
    outputs += [os.path.join(args.logdir, n) for n in [*names, tb.CROSS]]
    return settings, todo, outputs


def found_runs(p, paths):
    """Run directories (holding config.json and final.npz) among paths and their immediate subfolders."""
    runs = []
    for path in paths:
        if not os.path.isdir(path):
            p.error(f"--from-runs: {path} is not a directory")
        candidates = [path] if os.path.exists(os.path.join(path, "config.json")) else \
            [os.path.join(path, d) for d in sorted(os.listdir(path))]
        runs += [c for c in candidates if all(os.path.isfile(os.path.join(c, f)) for f in ("config.json", "final.npz"))]
    if not runs:
        p.error(f"--from-runs: no run directory (config.json + final.npz) in {' '.join(paths)}")
    return runs


def run_all(todo, workers, bar):
    """(landscape summaries, pair paths) of the runs in todo: in a pool of spawned processes taking one job
    at a time, or, when there is work for only one, in this process with the workers sharing each evaluation."""
    if min(workers, len(todo)) <= 1:
        jobs.SINK = bar.update
        done = [jobs.landscape({**job, "settings": dataclasses.replace(job["settings"], eval_workers=workers)})
                for job in todo]
        return done, dict(jobs.pair(job) for job in pair_jobs(done, todo[0]["settings"]))
    workers = min(workers, len(todo))
    processes, updates = parallel.pool(workers, jobs.init_worker, (max(1, parallel.cores() // workers),))
    with parallel.closing(processes, updates):
        done = parallel.wait(processes.map_async(jobs.landscape, todo), updates, bar.update)
        paths = parallel.wait(processes.map_async(jobs.pair, pair_jobs(done, todo[0]["settings"])), updates,
                              bar.update)
    return done, dict(paths)


def pair_jobs(done, settings):
    """One job per pair of finished runs: the straight path between their solutions."""
    return [{"settings": settings, "cfg": a[1], "a": a[2], "b": b[2], "names": (a[0]["run"], b[0]["run"])}
            for a, b in itertools.combinations(done, 2)]


def main(argv=None, prog="python -m experiments.landscape"):
    """Measure the landscapes; exit 0 done, 1 a job failed, 2 bad flags."""
    p = parser(prog)
    args = p.parse_args(argv)
    settings, todo, outputs = plan(p, args)
    taken = [d for d in outputs if os.path.exists(d)]
    if taken and not args.overwrite:
        p.error(f"{taken[0]} exists: pass --overwrite to replace it, or choose another --logdir")
    for d in taken:
        shutil.rmtree(d)
    alphas = surfaces.path_alphas(settings.resolution - 1)
    pairs = len(todo) * (len(todo) - 1) // 2
    total = len(todo) * surfaces.points(settings.resolution, alphas, settings.sharpness_dirs) + pairs * len(alphas)
    bar = FirstUpdateClock(total=total, desc="landscape", unit="pt", dynamic_ncols=True,   # trainings first
                           bar_format="{l_bar}{bar}| {n:.0f}/{total} points [{elapsed}<{remaining}]")
    try:
        done, paths = run_all(todo, args.workers, bar)
    except Exception as err:   # a worker's failure, reported on one line
        bar.close()
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    bar.close()
    report(settings, [d[0] for d in done], [d[1] for d in done], paths, alphas)
    return 0


def report(settings, rows, cfgs, paths, alphas):
    """The cross-initialization TensorBoard run, hparams per run (its training config), summary.json, and the
    table on stdout."""
    barriers = {names: surfaces.barrier(path) for names, path in paths.items()}
    for row in rows:
        mine = [b for names, b in barriers.items() if row["run"] in names]
        row["worst_barrier"] = max(mine) if mine else float("nan")
    table = [{k: v for k, v in row.items() if k != "pngs"} for row in rows]
    tb.write_cross(settings.logdir, paths, table, alphas)
    for row, cfg in zip(rows, cfgs):
        tb.write_hparams(settings.logdir, row["run"], hparams_of(cfg, cfg.backends[0]),
                         {k: row[k] for k in tb.HPARAMS_METRICS})
    write_json(os.path.join(settings.logdir, "summary.json"),
               {"runs": rows, "barriers": [{"a": a, "b": b, "barrier": v} for (a, b), v in barriers.items()]})
    print(tb.table(table))
    for (a, b), v in barriers.items():
        print(f"barrier {a} <-> {b}: {v:.4f}")
    print(f"contour PNGs in {settings.logdir}/png\nTensorBoard: {serve_command(settings.logdir)}")
