"""What every claims experiment shares: flags, --quick/--full settings, CSV, PNG, TensorBoard, a worker pool."""
import argparse
import csv
import dataclasses
import functools
import io
import multiprocessing
import os
import shutil
import sys
import time

import numpy as np
from matplotlib.figure import Figure   # Figure + savefig renders with Agg: no display, no pyplot state

from experiments.backends import Diverged
from experiments.data import DataError
from experiments.flags import Parser, positive_int
from experiments.io import write_atomic, write_text
from experiments.landscape import tb
from experiments.landscape.parallel import cores, thread_env


class JobFailed(RuntimeError):
    """A job given to Workers.map raised; the message names the function and the original error."""


MARK = ".claims-output"   # in OUT: its tb/ and runs/ were made by a claims command, which may replace them
FAILURES = (DataError, OSError, Diverged, JobFailed)   # what command() reports as one line instead of a traceback


def command(main):
    """Wraps an experiment's main(argv): a known failure prints one 'error: ...' line to stderr and returns 1."""
    @functools.wraps(main)
    def run(argv=None):
        try:
            return main(argv)
        except FAILURES as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            return 1
    return run


def parser(name, description, full, quick, workers=None):
    """The flags every experiment takes; the help shows both settings. workers: --workers' default (cores)."""
    epilog = f"full setting (default):\n  {describe(full)}\n--quick setting:\n  {describe(quick)}"
    p = Parser(prog=f"python -m experiments.claims.{name}", description=description,
               formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog)
    p.add_argument("--quick", action="store_true", help="the tiny smoke-test setting (seconds) instead of the full one")
    p.add_argument("--out", default=os.path.join("runs", "claims", name),
                   help=f"where the CSV, PNGs, TensorBoard logs (OUT/tb) and training runs (OUT/runs) go; OUT/tb and "
                        f"OUT/runs of an earlier run of a claims command are deleted first, other folders of those "
                        f"names are refused (default: runs/claims/{name})")
    p.add_argument("--workers", type=positive_int, default=workers or cores(),
                   help=f"worker processes for independent trainings (default: {workers or cores()}"
                        f"{'' if workers else ', the number of cores'})")
    return p


def describe(settings):
    """'field=value, ...' of a settings dataclass."""
    return ", ".join(f"{f.name}={getattr(settings, f.name)}" for f in dataclasses.fields(settings))


def start(name, description, full, quick, argv, workers=None):
    """(args, settings): parse the flags (args.started: when) and say what runs."""
    args = parser(name, description, full, quick, workers).parse_args(argv)
    args.started = time.perf_counter()
    settings = quick if args.quick else full
    log(f"{name} ({'quick' if args.quick else 'full'}): {describe(settings)}; output in {args.out}")
    return args, settings


def clear(out):
    """Make OUT, deleting the tb/ and runs/ an earlier claims run left there (OUT holds MARK); FileExistsError
    for a tb/ or runs/ this command did not create."""
    os.makedirs(out, exist_ok=True)
    subs = [os.path.join(out, sub) for sub in ("tb", "runs") if os.path.exists(os.path.join(out, sub))]
    if subs and not os.path.exists(os.path.join(out, MARK)):
        raise FileExistsError(f"{subs[0]} was not made by a claims command (no {MARK} in {out}); "
                              f"choose another --out")
    for sub in subs:
        shutil.rmtree(sub)
    write_text(os.path.join(out, MARK), "tb/ and runs/ here belong to experiments.claims and are replaced by its next run\n")


def strip(ax, groups, labels, log_scale=False):
    """One column of jittered dots per group (a list of value lists), labelled below."""
    for k, values in enumerate(groups):
        jitter = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else np.zeros(len(values))
        ax.plot(k + jitter, values, "o", color=f"C{k % 10}", alpha=0.7)
    ax.set_xticks(range(len(labels)), labels, rotation=20, fontsize=8)
    if log_scale:
        ax.set_yscale("log")


def stats(values):
    """'mean ± std (min .., max ..)' of some numbers, or 'none'."""
    values = np.asarray(values, float)
    if not len(values):
        return "none"
    return f"{values.mean():.4g} ± {values.std():.2g} (min {values.min():.4g}, max {values.max():.4g})"


def log_fit_factor(xs, ys):
    """10^slope of a least-squares line through log10(ys) against xs, over the finite positive ys; nan if < 2."""
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    keep = np.isfinite(ys) & (ys > 0)
    if keep.sum() < 2:
        return float("nan")
    return float(10 ** np.polyfit(xs[keep], np.log10(ys[keep]), 1)[0])


def finish(w, out, text, pngs, started):
    """The findings (lines of text) into TensorBoard, OUT/findings.txt and stdout, with the PNGs and the time taken."""
    w.add_text("findings", "\n\n".join(text))
    lines = text + [f"PNG: {p}" for p in pngs] + [f"took {time.perf_counter() - started:.1f} s"]
    write_text(os.path.join(out, "findings.txt"), "\n".join(lines) + "\n")
    print("\n".join(lines))


def log(message):
    """Progress goes to stderr, results to stdout."""
    print(f"[claims] {message}", file=sys.stderr, flush=True)


def write_csv(path, rows):
    """rows (a list of dicts with the same keys) as CSV; floats written in full (repr) precision."""
    text = io.StringIO(newline="")
    out = csv.DictWriter(text, fieldnames=list(rows[0]))
    out.writeheader()
    out.writerows({k: repr(v) if isinstance(v, float) else v for k, v in row.items()} for row in rows)
    write_text(path, text.getvalue())
    return path


def figure(cols=1, rows=1, size=(5.5, 4.2)):
    """(fig, axes) of a blank Agg figure with rows x cols panels; axes is a flat list."""
    fig = Figure(figsize=(size[0] * cols, size[1] * rows), dpi=100)
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    return fig, axes


def save_figure(fig, path, writer=None, tag=None):
    """fig as a PNG at path, and as a TensorBoard image under tag when a writer is given; returns path."""
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png")
    write_atomic(path, png.getvalue())
    if writer is not None:
        writer.add_figure(tag or os.path.splitext(os.path.basename(path))[0], fig)
    return path


def writer(out, run="summary"):
    """A SummaryWriter for OUT/tb/<run>."""
    return tb.writer(os.path.join(out, "tb"), run)


class JobLog:
    """Logs 'k/n jobs done' at most every few seconds, and at the end."""

    def __init__(self, total, every=5.0):
        self.total, self.every, self.done = total, every, 0
        self.start = self.last = time.perf_counter()

    def tick(self, note=""):
        self.done += 1
        now = time.perf_counter()
        if now - self.last >= self.every or self.done == self.total:
            log(f"{self.done}/{self.total} done ({now - self.start:.1f} s{note})")
            self.last = now


class Workers:
    """A pool of `workers` spawned processes, reused by every map() inside the with block; this process if 1."""
    # Each worker starts with cores // workers BLAS/OpenMP threads unless the environment sets them (torch reads
    # the same variables), so the pool does not oversubscribe the machine.

    def __init__(self, workers):
        self.workers, self.pool = workers, None

    def __enter__(self):
        if self.workers > 1:
            with thread_env(max(1, cores() // self.workers)):   # read by each worker's BLAS and torch at import
                self.pool = multiprocessing.get_context("spawn").Pool(self.workers)
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.close() if exc[0] is None else self.pool.terminate()
            self.pool.join()

    def map(self, function, jobs):
        """[function(job) for job in jobs], in order, progress logged; a job's exception raises JobFailed."""
        progress, results = JobLog(len(jobs)), []
        outcomes = self.pool.imap(function, jobs) if self.pool else map(function, jobs)
        try:
            for result in outcomes:
                results.append(result)
                progress.tick(f", {self.workers} workers" if self.pool else "")
        except Exception as err:
            raise JobFailed(f"{function.__name__} failed on job {len(results)}: {type(err).__name__}: {err}") from err
        return results


def parallel_map(function, jobs, workers):
    """[function(job) for job in jobs] over min(workers, len(jobs)) worker processes (see Workers)."""
    with Workers(min(workers, len(jobs))) as pool:
        return pool.map(function, jobs)
