"""What every claims experiment shares: flags, --quick/--full settings, CSV, PNG, TensorBoard, the sweep runner."""
import argparse
import csv
import dataclasses
import functools
import io
import os
import shutil
import sys
import time

import numpy as np
from matplotlib.figure import Figure   # Figure + savefig renders with Agg: no display, no pyplot state

from experiments import exits
from experiments.flags import Parser, positive_int
from experiments.io import remove_temporaries, write_text
from experiments.landscape import tb
from experiments.lock import DirectoryLock
from experiments.sweep import SCHEDULER_ENV, Sweep, cores

MARK = ".claims-output"   # in OUT: its tb/ and runs/ were made by a claims command, which may replace them
HELD = []                 # the --out lock clear() took; command() releases it when main ends


def command(main):
    """Wraps an experiment's main(argv): a known failure (experiments.exits: a failed task, an unreachable
    --scheduler, ...) is one 'prog: error: ...' line on stderr and its exit code; the --out lock is released at
    the end."""
    module = sys.modules[main.__module__]
    prog = f"python -m {module.__spec__.name if module.__spec__ else main.__module__}"   # not "__main__" under -m

    @functools.wraps(main)
    def run(argv=None):
        try:
            return exits.run(prog, main, argv)
        finally:
            while HELD:
                HELD.pop().release()
    return run


def parser(name, description, full, quick, workers=None):
    """The flags every experiment takes; the help shows both settings. workers: --workers' default (cores)."""
    epilog = f"full setting (default):\n  {describe(full)}\n--quick setting:\n  {describe(quick)}"
    p = Parser(prog=f"python -m experiments.claims.{name}", description=description,
               formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog)
    p.add_argument("--quick", action="store_true", help="the tiny smoke-test setting (seconds) instead of the full one")
    p.add_argument("--out", default=os.path.join("runs", "claims", name),
                   help=f"where the CSV, PNGs, TensorBoard logs (OUT/tb) and training runs (OUT/runs) go; locked "
                        f"while the command runs (default: runs/claims/{name})")
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUT/tb and OUT/runs of an earlier run of a claims command (without it they are "
                        "refused; folders of those names that no claims command made are refused always)")
    p.add_argument("--workers", type=positive_int, default=workers or cores(),
                   help=f"local worker processes for independent trainings (a Dask LocalCluster, one thread each; "
                        f"1: in this process) (default: {workers or cores()}"
                        f"{'' if workers else ', the number of cores'})")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run the trainings on the Dask cluster of this scheduler instead (its workers need the "
                        "project installed and MNIST in their data directory); unreachable: exit 2 "
                        f"(default: ${SCHEDULER_ENV}, else local workers)")
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


def clear(out, overwrite=False):
    """Make and lock OUT (until command()'s main ends), remove stale temporaries, and delete the tb/ and runs/
    an earlier claims run left there, only with overwrite; FileExistsError for a tb/ or runs/ there without
    overwrite, or one this command did not create (OUT lacks MARK)."""
    HELD.append(DirectoryLock(out, "--out").acquire())
    remove_temporaries(out)
    subs = [os.path.join(out, sub) for sub in ("tb", "runs") if os.path.exists(os.path.join(out, sub))]
    if subs and not os.path.exists(os.path.join(out, MARK)):
        raise FileExistsError(f"{subs[0]} was not made by a claims command (no {MARK} in {out}); "
                              f"choose another --out")
    if subs and not overwrite:
        raise FileExistsError(f"{subs[0]} holds an earlier run: pass --overwrite to replace it, or choose "
                              f"another --out")
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
    png = tb.save_png(fig, path)
    if writer is not None:
        writer.add_image(tag or os.path.splitext(os.path.basename(path))[0], png)
    return path


def writer(out, run="summary"):
    """An event writer for OUT/tb/<run>."""
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


def workers(args, jobs=None):
    """The sweep runner for --workers (at most `jobs` of them, when given) or --scheduler; use it as a context."""
    return Sweep(args.workers if jobs is None else min(args.workers, jobs), args.scheduler,
                 log=lambda line: log(f"sweep: {line}"))


def run(sweep, function, jobs):
    """sweep.map(function, jobs), a line logged as jobs finish; a job's exception: TaskFailed naming its worker."""
    progress = JobLog(len(jobs))
    note = f", {sweep.size} workers" if sweep.client else ""
    return sweep.map(function, jobs, finished=lambda index: progress.tick(note))


def parallel_map(function, jobs, args):
    """[function(job) for job in jobs] over min(--workers, len(jobs)) local workers or --scheduler's cluster."""
    with workers(args, len(jobs)) as sweep:
        return run(sweep, function, jobs)
