"""What every claims experiment shares: flags, --quick/--full settings, CSV, PNG, TensorBoard, a worker pool."""
import argparse
import csv
import dataclasses
import multiprocessing
import os
import shutil
import sys
import time

from matplotlib.figure import Figure   # Figure + savefig renders with Agg: no display, no pyplot state

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def cores():
    return len(os.sched_getaffinity(0))


def positive_int(text):
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def parser(name, description, full, quick):
    """The flags every experiment takes; the help shows both settings."""
    epilog = f"full setting (default):\n  {describe(full)}\n--quick setting:\n  {describe(quick)}"
    p = argparse.ArgumentParser(prog=f"python -m experiments.claims.{name}", description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog)
    p.add_argument("--quick", action="store_true", help="the tiny smoke-test setting (seconds) instead of the full one")
    p.add_argument("--out", default=os.path.join("runs", "claims", name),
                   help=f"where the CSV, PNGs and TensorBoard logs (OUT/tb) go (default: runs/claims/{name})")
    p.add_argument("--workers", type=positive_int, default=cores(),
                   help=f"worker processes for independent trainings (default: the number of cores, {cores()})")
    return p


def describe(settings):
    """'field=value, ...' of a settings dataclass."""
    return ", ".join(f"{f.name}={getattr(settings, f.name)}" for f in dataclasses.fields(settings))


def start(name, description, full, quick, argv):
    """(args, settings): parse the flags, empty OUT's TensorBoard and training folders, say what runs."""
    args = parser(name, description, full, quick).parse_args(argv)
    settings = quick if args.quick else full
    for sub in ("tb", "runs"):
        shutil.rmtree(os.path.join(args.out, sub), ignore_errors=True)
    os.makedirs(args.out, exist_ok=True)
    log(f"{name} ({'quick' if args.quick else 'full'}): {describe(settings)}; output in {args.out}")
    return args, settings


def log(message):
    """Progress goes to stderr, results to stdout."""
    print(f"[claims] {message}", file=sys.stderr, flush=True)


def write_csv(path, rows):
    """rows (a list of dicts with the same keys) as CSV; floats written in full (repr) precision."""
    with open(path, "w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows({k: repr(v) if isinstance(v, float) else v for k, v in row.items()} for row in rows)
    return path


def read_csv(path):
    """A CSV written by write_csv as a list of dicts of strings."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def figure(cols=1, rows=1, size=(5.5, 4.2)):
    """(fig, axes) of a blank Agg figure with rows x cols panels; axes is a flat list."""
    fig = Figure(figsize=(size[0] * cols, size[1] * rows), dpi=100)
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    return fig, axes


def save_figure(fig, path, writer=None, tag=None):
    """fig as a PNG at path, and as a TensorBoard image under tag when a writer is given; returns path."""
    fig.tight_layout()
    fig.savefig(path)
    if writer is not None:
        writer.add_figure(tag or os.path.splitext(os.path.basename(path))[0], fig)
    return path


def writer(out, run="summary"):
    """A SummaryWriter for OUT/tb/<run>."""
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(os.path.join(out, "tb", run))


class Progress:
    """Logs 'k/n done' at most every few seconds, and at the end."""

    def __init__(self, total, every=5.0):
        self.total, self.every, self.done = total, every, 0
        self.start = self.last = time.perf_counter()

    def tick(self, note=""):
        self.done += 1
        now = time.perf_counter()
        if now - self.last >= self.every or self.done == self.total:
            log(f"{self.done}/{self.total} done ({now - self.start:.1f} s{note})")
            self.last = now


def parallel_map(function, jobs, workers):
    """[function(job) for job in jobs], in order, over `workers` spawned processes (in this one if workers == 1).

    Each worker starts with cores // workers BLAS/OpenMP threads (torch reads the same variables), so the pool
    does not oversubscribe the machine.
    """
    workers, progress, results = min(workers, len(jobs)), Progress(len(jobs)), []
    if workers <= 1:
        for job in jobs:
            results.append(function(job))
            progress.tick()
        return results
    threads = str(max(1, cores() // workers))
    saved = {var: os.environ.get(var) for var in THREAD_VARS}
    os.environ.update({var: threads for var in THREAD_VARS})   # read by each worker's BLAS and torch at import
    try:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for result in pool.imap(function, jobs):
                results.append(result)
                progress.tick(f", {workers} workers")
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
    return results
