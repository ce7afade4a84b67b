"""`python -m experiments.landscape` (and `backprop-lab landscape`): loss landscapes across initializations."""
import contextlib
import functools
import itertools
import os
import shutil
import sys

from experiments import exits
from experiments.backends import TRAINERS
from experiments.config import Config, arch_of
from experiments.devices import DEVICES, resolve as resolve_device
from experiments.events import serve_command
from experiments.flags import Parser, add_config_flags, positive_float, positive_int, seed
from experiments.io import remove_temporaries, write_json
from experiments.landscape import curvature, jobs, pairs, partners, spread, surfaces, tb
from experiments.landscape import EVALUATION_BACKENDS
from experiments.lock import DirectoryLock
from experiments.progress import FirstUpdateClock, Progress
from experiments.sweep import SCHEDULER_ENV, Sweep, cores
from experiments.train.loop import hparams_of
from manual.init import parse as parse_init


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
    p.add_argument("--seeds", nargs="+", type=seed, metavar="SEED",
                   help="seeds per scheme (initial weights and batch order); default: 0 1")
    p.add_argument("--backend", dest="eval_backend", choices=EVALUATION_BACKENDS, default="manual",
                   help="backend that evaluates the landscape points (default: manual)")
    p.add_argument("--train-backend", choices=TRAINERS,
                   help="backend that trains each run (default: manual)")
    p.add_argument("--device", dest="eval_device", choices=DEVICES, default="cpu",
                   help="where the torch evaluation (--backend torch) and the torch Hessian-vector products "
                        "(--curvature-backend torch) compute: cpu, cuda, or auto (cuda when torch sees a GPU, else "
                        "cpu); the manual backend is NumPy on the CPU, so cuda needs one of the two on torch; the "
                        "trainings stay on the CPU (default: cpu)")
    add_config_flags(p, skip=("backend", "init", "seed", "device"))
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
    p.add_argument("--curvature-samples", type=int, default=CURVATURE_SAMPLES, metavar="N",
                   help="Hessian of the mean loss on the first N evaluation images (at most --eval-samples), at "
                        "every solution and its initial weights: lambda_max and lambda_min (Lanczos, eigsh), the "
                        "trace (Hutchinson, with its 95%% interval) and the spectral density (stochastic Lanczos "
                        "quadrature); 0 = off. Fewer images give a noisier and higher lambda_max: on a trained mlp its "
                        "spread (std / mean) across 5 disjoint subsets was 21%% at 128 images, 14%% at 1,000 and 2.3%% "
                        "at 10,000, its mean 14.9, 11.1 and 9.9 (benchmarks/curvature_spread.py) "
                        f"(default: {CURVATURE_SAMPLES})")
    p.add_argument("--curvature-backend", choices=curvature.BACKENDS, default="manual",
                   help="backend of the Hessian-vector products: manual (the R-operator in NumPy) or torch (double "
                        "backward) (default: manual)")
    p.add_argument("--align", choices=tuple(jobs.ALIGNMENTS), default="weight",
                   help="also measure every pair's straight path after aligning the second solution's hidden units "
                        "to the first's: weight matching, activation matching on the evaluation images, both (the "
                        "lower barrier counts as the aligned one), or none (default: weight)")
    p.add_argument("--bezier-steps", type=int, default=0, metavar="N",
                   help="also train a quadratic Bezier curve between every pair of solutions for N SGD steps (the "
                        "runs' training backend, training subset, learning rate, momentum and batch size) and "
                        "measure the loss along it; 0 = off (default: 0)")
    p.add_argument("--logdir", default="runs/landscape",
                   help="TensorBoard log directory: one run per (scheme, seed) and one 'cross_init' run; contour "
                        "PNGs in LOGDIR/png (default: runs/landscape)")
    p.add_argument("--train-dir", default=None,
                   help="where the training runs go (default: LOGDIR-train)")
    p.add_argument("--workers", type=positive_int, default=cores(),
                   help="local worker processes (a Dask LocalCluster, one thread each; 1: everything in this "
                        "process): each takes one (scheme, seed) run at a time, or they share the grid points of a "
                        "lone run (default: the number of cores)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run on the Dask cluster of this scheduler instead of local workers (its workers need the "
                        "project installed and MNIST in their data directory); unreachable: exit 2 "
                        f"(default: ${SCHEDULER_ENV}, else local workers)")
    p.add_argument("--overwrite", action="store_true",
                   help="delete earlier results of the same runs first (their training runs and TensorBoard runs)")
    return p


CURVATURE_SAMPLES = 1000   # the default of --curvature-samples
TRAINING = {"inits": ["kaiming_normal", "xavier_uniform"], "seeds": [0, 1], "train_backend": "manual",
            "snapshots_per_epoch": 10}   # flags (and their defaults) that only apply when training


def plan(p, args):
    """(Settings, landscape jobs, their output directories), or a one-line error for flags that do not fit."""
    if args.resolution < 3 or args.resolution % 2 == 0:
        p.error(f"--resolution must be odd and >= 3 so the grid has a centre, got {args.resolution}")
    if args.eval_samples > 10_000:
        p.error(f"--eval-samples: the test set has 10000 images, got {args.eval_samples}")
    for flag in ("curvature_samples", "bezier_steps"):
        if getattr(args, flag) < 0:
            p.error(f"--{flag.replace('_', '-')} must be >= 0 (0 = off), got {getattr(args, flag)}")
    training = [k for k, v in vars(args).items() if v is not None and (
        k in TRAINING or k in Config.__dataclass_fields__ and k != "data_dir")]
    if args.from_runs and training:
        p.error(f"--from-runs reuses finished runs: drop --{training[0].replace('_', '-')}")
    for k, v in TRAINING.items():
        setattr(args, k, v if getattr(args, k) is None else getattr(args, k))
    try:
        schemes = [parse_init(init) for init in args.inits]
    except ValueError as err:
        p.error(f"--inits: {err}")
    twins = [init for k, init in enumerate(args.inits) if schemes[k] in schemes[:k]]
    if twins:
        p.error(f"--inits: {twins[0]} names a scheme given already (kaiming = kaiming_normal, "
                f"xavier = xavier_uniform, normal = normal:0.01, uniform = uniform:0.1)")
    if args.eval_device == "cuda" and "torch" not in (args.eval_backend, args.curvature_backend):
        p.error("--device cuda: the manual backend is NumPy on the CPU only; use --backend torch and/or "
                "--curvature-backend torch")
    try:
        device = resolve_device(args.eval_device) if "torch" in (args.eval_backend, args.curvature_backend) \
            else "cpu"
    except ValueError as err:
        p.error(str(err))
    settings = spread.Settings(
        backend=args.eval_backend, resolution=args.resolution, span=args.span, eval_samples=args.eval_samples,
        sharpness_radius=args.sharpness_radius, sharpness_dirs=args.sharpness_dirs,
        snapshots_per_epoch=args.snapshots_per_epoch, curvature_samples=args.curvature_samples,
        curvature_backend=args.curvature_backend, align=args.align, bezier_steps=args.bezier_steps, logdir=args.logdir,
        device=device,
        train_dir=args.train_dir or args.logdir.rstrip("/") + "-train")
    if args.from_runs:
        runs = found_runs(p, args.from_runs)
        cfgs = [jobs.check_finished(r) for r in runs]
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
    """Run directories (holding config.json) among paths and their immediate subfolders; one without final.npz
    (unfinished) is refused by name."""
    runs = []
    for path in paths:
        if not os.path.isdir(path):
            p.error(f"--from-runs: {path} is not a directory")
        candidates = [path] if os.path.exists(os.path.join(path, "config.json")) else \
            [os.path.join(path, d) for d in sorted(os.listdir(path))]
        runs += [c for c in candidates if os.path.isfile(os.path.join(c, "config.json"))]
    if not runs:
        p.error(f"--from-runs: no run directory (config.json + final.npz) in {' '.join(paths)}")
    unfinished = [r for r in runs if not os.path.isfile(os.path.join(r, "final.npz"))]
    if unfinished:
        p.error(f"--from-runs: {unfinished[0]} is unfinished (no final.npz): finish it with python -m "
                f"experiments.train --resume --run-dir {unfinished[0]}, or leave it out")
    return runs


def within(path, folder):
    """Whether path is folder or lies inside it (after resolving links)."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


def locks(settings, training):
    """The directory locks of a landscape job: --logdir, and --train-dir when it trains (once if they are one)."""
    held = [DirectoryLock(settings.logdir, "--logdir")]
    if training and os.path.realpath(settings.train_dir) != os.path.realpath(settings.logdir):
        held.append(DirectoryLock(settings.train_dir, "--train-dir"))
    return held


def run_all(todo, sweep, bar):
    """(landscape summaries, pair paths) of the runs in todo: one task per run on the sweep's workers, or, for a
    lone run, in this process with the workers sharing its grid points; then one task per pair of runs."""
    progress = Progress(bar.update)
    if len(todo) == 1:
        done = sweep.map(functools.partial(jobs.landscape, sweep=sweep), todo, progress, here=True)
    else:
        done = sweep.map(jobs.landscape, todo, progress)
    paths = sweep.map(jobs.pair, pair_jobs(done, todo[0]["settings"]), progress)
    progress.flush()
    return done, dict(paths)


def pair_jobs(done, settings):
    """One job per pair of finished runs: the paths between their solutions (straight, aligned, Bezier)."""
    return [{"settings": settings, "cfg": a[1], "a": a[2], "b": b[2], "names": (a[0]["run"], b[0]["run"])}
            for a, b in itertools.combinations(done, 2)]


def main(argv=None, prog="python -m experiments.landscape"):
    """Measure the landscapes; the exit codes are experiments.exits' (0 done, 1 bad input or a job failed,
    2 bad flags, 3 a training diverged, 6 --logdir or --train-dir in use, 130 Ctrl-C, 143 SIGTERM)."""
    return exits.run(prog, command, argv, prog)


def command(argv, prog):
    """main's work: flags, inputs checked, --logdir (and --train-dir) locked, then the jobs."""
    p = parser(prog)
    args = p.parse_args(argv)
    settings, todo, outputs = plan(p, args)
    with contextlib.ExitStack() as stack:
        for held in locks(settings, training=not args.from_runs):
            stack.enter_context(held)
            remove_temporaries(held.directory)
        return measure_all(p, args, settings, todo, outputs)


def measure_all(p, args, settings, todo, outputs):
    """Clear the outputs to be replaced (never an input run), run the jobs, report; the exit code."""
    taken = [d for d in outputs if os.path.exists(d)]
    if taken and not args.overwrite:
        p.error(f"{taken[0]} exists: pass --overwrite to replace it, or choose another --logdir")
    inputs = [job["run_dir"] for job in todo if job.get("run_dir")]
    clash = next(((r, d) for d in taken for r in inputs if within(r, d)), None)
    if clash:
        p.error(f"--overwrite would delete {clash[1]}, which holds the input run {clash[0]} (--from-runs): "
                f"choose another --logdir")
    for d in taken:
        shutil.rmtree(d)
    alphas = surfaces.path_alphas(settings.resolution - 1)
    pair_count = len(todo) * (len(todo) - 1) // 2
    kinds = 1 + len(jobs.ALIGNMENTS[settings.align]) + bool(settings.bezier_steps)   # paths per pair
    total = len(todo) * surfaces.points(settings.resolution, alphas, settings.sharpness_dirs) + \
        pair_count * kinds * len(alphas)
    workers = args.workers if len(todo) == 1 else min(args.workers, len(todo))
    with Sweep(workers, args.scheduler, log=lambda line: print(f"[sweep] {line}", file=sys.stderr)) as sweep:
        bar = FirstUpdateClock(total=total, desc="landscape", unit="pt", dynamic_ncols=True,   # trainings first
                               bar_format="{l_bar}{bar}| {n:.0f}/{total} points [{elapsed}<{remaining}]")
        with bar:   # closed before exits.run reports a failed task or an unreachable --scheduler on one line
            done, paths = run_all(todo, sweep, bar)
    report(settings, done, paths, alphas)
    return 0


CURVATURE_METRICS = ("lambda_max", "lambda_min", "trace", "lambda_max_init", "lambda_min_init", "trace_init")


def draw_partners(settings, done, records, barriers):
    """Redraw each run's contour figures with its aligned partners; {run: {kind: {partner: {coords, off}}}}."""
    finals = {summary["run"]: final for summary, _, final in done}
    perms = {names: r["perms"][barriers[names]["aligned_by"]] for names, r in records.items()}
    aligned = partners.aligned_partners(arch_of(done[0][1]), finals, perms)
    out = {}
    for summary, _, final in done:
        planes = summary.pop("planes")
        where = partners.positions(planes, final, aligned[summary["run"]])
        tb.write_partners(settings.logdir, summary["run"], planes, where)
        out[summary["run"]] = {kind: {name: {"coords": [float(c) for c in coords], "off": off}
                                      for name, (coords, off) in found.items()} for kind, found in where.items()}
    return out


def report(settings, done, records, alphas):
    """The cross-initialization TensorBoard run, hparams per run, summary.json, and the table on stdout."""
    rows = [d[0] for d in done]
    barriers = {names: r["barriers"] for names, r in records.items()}
    kinds = ["barrier", *(["barrier_aligned"] if jobs.ALIGNMENTS[settings.align] else []),
             *(["barrier_bezier"] if settings.bezier_steps else [])]
    for row in rows:
        for kind in kinds:
            mine = [b[kind] for names, b in barriers.items() if row["run"] in names]
            row[f"worst_{kind}"] = max(mine) if mine else float("nan")
    positions = draw_partners(settings, done, records, barriers) if barriers and "planes" in rows[0] else {}
    for row in rows:
        row.pop("planes", None)
    table = [{k: v for k, v in row.items() if k != "pngs"} for row in rows]
    tb.write_cross(settings.logdir, {names: r["paths"]["raw"] for names, r in records.items()}, table, alphas)
    if barriers:
        tb.write_pairs(settings.logdir, {names: pairs.legends(r["paths"], r["barriers"])
                                         for names, r in records.items()}, barriers,
                       {names: r["png"] for names, r in records.items()})
    for row, (_, cfg, _) in zip(rows, done):
        keys = (*tb.HPARAMS_METRICS, *(f"worst_{k}" for k in kinds[1:]), *CURVATURE_METRICS)
        tb.write_hparams(settings.logdir, row["run"], hparams_of(cfg, cfg.backends[0]),
                         {k: row[k] for k in keys if k in row})
    write_json(os.path.join(settings.logdir, "summary.json"),
               {"runs": rows, "barrier_definition": tb.BARRIER, "partners": positions,
                "barriers": [{"a": a, "b": b, **v} for (a, b), v in barriers.items()]})
    print(tb.table(table))
    for (a, b), v in barriers.items():
        found = [f"{v['barrier']:.4f} raw"]
        if "barrier_aligned" in v:
            found.append(f"{v['barrier_aligned']:.4f} aligned ({v['aligned_by']} matching)")
        if "barrier_bezier" in v:
            found.append(f"{v['barrier_bezier']:.4f} along the Bezier curve")
        print(f"barrier {a} <-> {b}: {', '.join(found)}")
    print(f"({tb.BARRIER})")
    print(f"contour PNGs in {settings.logdir}/png\nTensorBoard: {serve_command(settings.logdir)}")
