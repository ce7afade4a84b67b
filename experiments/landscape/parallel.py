"""Worker processes with one BLAS/OpenMP thread per core each, and progress sent back to the parent in lumps.

Many small multi-threaded matrix products stall when the cores are shared (each one waits for every thread),
so the landscape splits its work between single-threaded processes instead.
"""
import contextlib
import multiprocessing
import os
import queue

import numpy as np

from experiments.landscape.evaluate import Evaluator, as_coords
from experiments.progress import Progress

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def cores():
    return len(os.sched_getaffinity(0))


@contextlib.contextmanager
def thread_env(threads):
    """os.environ with `threads` threads per BLAS/OpenMP pool (unless the user set them), for spawning children."""
    saved = {var: os.environ.get(var) for var in THREAD_VARS}
    for var in THREAD_VARS:
        os.environ.setdefault(var, str(threads))
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def pool(workers, initializer, initargs=()):
    """(a spawned Pool whose initializer gets a progress sink first, the queue that sink feeds)."""
    ctx = multiprocessing.get_context("spawn")
    updates = ctx.Queue()
    with thread_env(max(1, cores() // workers)):
        return ctx.Pool(workers, initializer=initializer, initargs=(updates.put, *initargs)), updates


def shut(processes, updates, failed):
    """End a pool: gracefully after success (its workers then run their exit handlers, which unregister their
    semaphores), at once after a failure; then close its progress queue."""
    if failed:
        processes.terminate()
    else:
        processes.close()
    processes.join()
    updates.close()
    updates.join_thread()


@contextlib.contextmanager
def closing(processes, updates):
    """A context that shuts the pool when it ends (see shut)."""
    try:
        yield processes
    except BaseException:
        shut(processes, updates, failed=True)
        raise
    shut(processes, updates, failed=False)


def wait(pending, updates, sink):
    """pending's result (an AsyncResult), passing the progress that arrives meanwhile to sink."""
    while not pending.ready():
        with contextlib.suppress(queue.Empty):
            sink(updates.get(timeout=0.1))
    result = pending.get()
    with contextlib.suppress(queue.Empty):
        while True:
            sink(updates.get(timeout=0.05))
    return result


_evaluator, _sink = None, None   # in a ParallelEvaluator's worker: its own Evaluator and progress sink


def _start(sink, args, kwargs):
    global _evaluator, _sink
    _evaluator, _sink = Evaluator(*args, **kwargs), sink


def _block(centre, directions, coords):
    progress = Progress(_sink)
    result = _evaluator(centre, directions, coords, progress)
    progress.flush()
    return result


class ParallelEvaluator:
    """An Evaluator per worker process, each taking a block of the grid points; use it as a context manager."""

    def __init__(self, workers, *args, **kwargs):
        self.workers = workers
        self.pool, self.updates = pool(workers, _start, (args, kwargs))

    def __call__(self, centre, directions=(), coords=None, progress=None):
        coords = as_coords(coords, len(directions))
        blocks = np.array_split(coords, min(self.workers, len(coords)))
        pending = self.pool.starmap_async(_block, [(centre, list(directions), block) for block in blocks])
        parts = wait(pending, self.updates, progress or (lambda amount: None))
        return tuple(np.concatenate([part[i] for part in parts]) for i in range(2))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        shut(self.pool, self.updates, failed=exc_type is not None)
