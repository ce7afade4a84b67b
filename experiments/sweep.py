"""One runner for every sweep: jobs mapped over a dask.distributed cluster (local by default), or in this process.

Each job runs with one BLAS/OpenMP/torch thread, wherever it runs, so a result never depends on the worker that
computed it (float64 results are bitwise identical serially, on a local cluster and on a remote one). Jobs carry
configurations, not data: a task loads MNIST from its worker's own data directory. Inside a task, report(amount)
sends progress (e.g. fractions of grid points) back to the caller's sink.
"""
import contextlib
import functools
import importlib.util
import logging
import os
import queue
import sys
import threading
import time
import uuid

from threadpoolctl import threadpool_limits

from experiments import exits

SCHEDULER_ENV = "BACKPROP_LAB_SCHEDULER"
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
REPORT_EVERY = 0.2   # seconds between a remote task's progress messages
CONNECT_TIMEOUT = 10  # seconds to reach a scheduler, unless a Sweep is given its own
LOCAL_CONFIG = {   # a LocalCluster's workers keep glibc's adaptive malloc: dask's default trim threshold (64 KiB)
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,   # maps and unmaps every numpy temporary
    "distributed.admin.tick.interval": "1s",                              # above it (a 21x21 surface: 3x slower);
    "distributed.admin.system-monitor.interval": "2s",                    # fewer wake-ups taking the task's GIL
}


def cores():
    """The CPUs this process may run on: the default number of local workers."""
    return len(os.sched_getaffinity(0))


class SchedulerUnreachable(ConnectionError):
    """No Dask scheduler answered at the given address within the connect timeout."""

    exit_code = exits.USAGE


class TaskFailed(RuntimeError):
    """A job raised (or its workers kept dying); the message names the job, the worker and the original error."""

    exit_code = exits.FAILED


def one_line(err):
    """'Type: message' of an exception, on one line."""
    return f"{type(err).__name__}: {' '.join(str(err).split())}"


_current = threading.local()   # .reporter: where report() sends progress in the task running on this thread


def report(amount):
    """Inside a sweep's task: `amount` more progress (any unit the caller's sink counts); a no-op elsewhere."""
    reporter = getattr(_current, "reporter", None)
    if reporter is not None:
        reporter(amount)


class Tally:
    """Counts a task's progress; forwards it to `send` at once (send=None: keeps it), or, when `every` is given,
    as the running total at most every `every` seconds."""

    def __init__(self, send=None, every=None):
        self.send, self.every, self.total, self.last = send, every, 0.0, time.monotonic()

    def __call__(self, amount):
        self.total += amount
        if self.send is None:
            return
        if self.every is None:
            self.send(amount)
        elif time.monotonic() - self.last >= self.every:
            self.send(self.total)
            self.last = time.monotonic()


@contextlib.contextmanager
def pinned():
    """One BLAS/OpenMP thread (threadpoolctl, for libraries already loaded; the environment, for those loaded
    inside) and one torch thread while the block runs; the environment and torch's earlier count come back after."""
    saved = {var: os.environ.get(var) for var in THREAD_VARS}
    os.environ.update(dict.fromkeys(THREAD_VARS, "1"))
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch else 1   # torch first imported inside keeps the 1 it read then
    if torch:
        torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(before)
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def call(fn, job, reporter):
    """(ok, fn(job) or the error on one line, progress reported) with threads pinned and report() going to
    reporter."""
    previous, _current.reporter = getattr(_current, "reporter", None), reporter
    try:
        with pinned():
            return True, fn(job), reporter.total
    except Exception as err:   # sent back as data: any exception, picklable or not, reaches the caller as one line
        return False, (one_line(err), getattr(err, "exit_code", exits.FAILED)), reporter.total
    finally:
        _current.reporter = previous


def remote(fn, job, index, *, topic):
    """A cluster task: call() with progress sent to the client as [index, running total] events on topic;
    returns (worker address, ok, value or error, progress reported)."""
    from distributed import get_worker

    worker = get_worker()
    tally = Tally(lambda total: worker.log_event(topic, [index, total]), every=REPORT_EVERY)
    return (worker.address, *call(fn, job, tally))


def has_bokeh():
    """Whether distributed can serve its dashboard in this process (it needs bokeh)."""
    return importlib.util.find_spec("bokeh") is not None


def importable(fn):
    """fn, or, when it was defined in a module run with `python -m` (here named __main__), the same function
    imported under the module's own name, so that workers import it rather than receive a copy of it."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if getattr(fn, "__module__", None) != "__main__" or spec is None:
        return fn
    return getattr(importlib.import_module(spec.name), fn.__qualname__, fn)


def failure(name, index, where, error, code=exits.FAILED):
    """TaskFailed for job `index` of function `name`, run at `where`, with the error on one line and the exit code
    of the original error (a divergence's 3, an interrupted training's 130, ...)."""
    err = TaskFailed(f"{name} failed on job {index} at {where}: {error}")
    err.exit_code = code
    return err


class Sweep:
    """Maps functions over jobs: in this process (workers=1, no scheduler), on a LocalCluster of `workers`
    single-threaded processes it starts and closes, or on the cluster at `scheduler` (else $BACKPROP_LAB_SCHEDULER),
    whose size is its own. Use it as a context manager; one Sweep serves any number of map() calls.

    log: called with one line per notable event (the cluster's size and the dashboard's address, when there is
    one); None for silence.
    """

    def __init__(self, workers=1, scheduler=None, connect_timeout=None, log=None):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.scheduler = scheduler or os.environ.get(SCHEDULER_ENV) or None
        self.workers, self.log = workers, log or (lambda line: None)
        self.connect_timeout = CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
        self.client = self.cluster = None
        self.stack = contextlib.ExitStack()

    @property
    def serial(self):
        return self.workers == 1 and self.scheduler is None

    @property
    def size(self):
        """How many tasks run at once: the cluster's worker threads, 1 serially."""
        if self.client is None:
            return 1
        return sum(w["nthreads"] for w in self.client.scheduler_info()["workers"].values())

    def __enter__(self):
        if self.serial:
            return self
        try:
            self.stack.enter_context(self._quiet())
            if self.scheduler:
                self.client = self.stack.enter_context(self._connect())
            else:
                self.client = self.stack.enter_context(self._local())
            self._announce()
        except BaseException:
            self.stack.close()
            raise
        return self

    def __exit__(self, *exc):
        self.client = self.cluster = None
        self.stack.close()

    @contextlib.contextmanager
    def _quiet(self):
        """Errors only from distributed's loggers in this process while the Sweep lasts (a LocalCluster's
        workers get less still through silence_logs): no INFO lines, no warnings about a busy event loop."""
        loggers = [logging.getLogger(name) for name in ("distributed", "bokeh", "tornado")]
        levels = [lg.level for lg in loggers]
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)

    @contextlib.contextmanager
    def _local(self):
        import dask
        from distributed import Client, LocalCluster

        self.stack.enter_context(dask.config.set(LOCAL_CONFIG))
        self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                    dashboard_address=":0" if has_bokeh() else None,
                                    silence_logs=logging.CRITICAL)   # no tracebacks of streams closed at shutdown
        with self.cluster, Client(self.cluster, set_as_default=False) as client:
            yield client

    @contextlib.contextmanager
    def _connect(self):
        from distributed import Client

        try:
            client = Client(self.scheduler, timeout=self.connect_timeout, set_as_default=False)
        except (OSError, ValueError, TypeError) as err:   # refused, timed out, or not an address
            raise SchedulerUnreachable(f"cannot reach the Dask scheduler at {self.scheduler} within "
                                       f"{self.connect_timeout} s: {one_line(err)}") from None
        with client:
            yield client

    def _announce(self):
        """Log the cluster's size, and its dashboard's link when the scheduler can serve one (a scheduler
        always answers HTTP, but shows the dashboard only with bokeh installed)."""
        where = "local cluster" if self.cluster else f"cluster at {self.scheduler}"
        self.log(f"{where}: {len(self.client.scheduler_info()['workers'])} workers")
        if self.client.run_on_scheduler(has_bokeh):
            self.log(f"dashboard: {self.client.dashboard_link}")

    def map(self, fn, jobs, progress=None, finished=None, here=False):
        """[fn(job) for job in jobs], in job order, with one thread per task.

        progress: called in this thread with the amounts tasks pass to report(); finished: called with a job's
        index as its result arrives (in completion order); here: run the jobs in this process, one after the other
        (for a job that spreads its own work over this Sweep). A job that raises: TaskFailed naming the worker.
        """
        jobs = list(jobs)
        name = getattr(fn, "__name__", getattr(getattr(fn, "func", None), "__name__", "task"))
        if here or self.client is None:
            if not (here or self.serial):
                raise RuntimeError("Sweep.map outside its with block")
            return self._serial(fn, name, jobs, progress, finished)
        return self._distributed(importable(fn), name, jobs, progress, finished)

    def _serial(self, fn, name, jobs, progress, finished):
        results = []
        for index, job in enumerate(jobs):
            ok, value, _ = call(fn, job, Tally(progress))
            if not ok:
                raise failure(name, index, f"this process (pid {os.getpid()})", *value)
            results.append(value)
            if finished:
                finished(index)
        return results

    def _distributed(self, fn, name, jobs, progress, finished):
        events = queue.Queue()                        # ("progress", index, total) or ("done", index), from the loop
        topic = f"backprop-lab-progress-{uuid.uuid4().hex}"
        sent = [0.0] * len(jobs)                      # progress forwarded to the sink, per job

        def forward(index, total):
            """Progress of a job up to total; a rerun (after its worker died) adds nothing until it gets further."""
            if total > sent[index]:
                if progress:
                    progress(total - sent[index])
                sent[index] = total

        self.client.subscribe_topic(topic, lambda event: events.put(("progress", *event[1])))
        futures = self.client.map(functools.partial(remote, fn, topic=topic), jobs, range(len(jobs)),
                                  key=[f"{name}-{i}-{topic[-32:]}" for i in range(len(jobs))], pure=False)
        for index, future in enumerate(futures):
            future.add_done_callback(lambda _, index=index: events.put(("done", index)))
        results, left = [None] * len(jobs), len(jobs)
        try:
            while left:
                done = []
                for kind, index, *total in self._waiting(events):
                    if kind == "progress":
                        forward(index, *total)
                    else:
                        done.append(index)
                for index, (where, ok, value, reported) in zip(done, self._gather(name, futures, done)):
                    if not ok:
                        raise failure(name, index, f"worker {where}", *value)
                    forward(index, reported)
                    sent[index] = float("inf")        # late progress messages of this job are ignored
                    results[index], left, futures[index] = value, left - 1, None   # the cluster may forget it
                    if finished:
                        finished(index)
        finally:
            self.client.cancel([f for f in futures if f is not None])
            self.client.unsubscribe_topic(topic)
        return results

    @staticmethod
    def _waiting(events):
        """The next event (waiting for it) and every other one already queued."""
        yield events.get()
        with contextlib.suppress(queue.Empty):
            while True:
                yield events.get_nowait()

    def _gather(self, name, futures, indices):
        """The outcomes of the finished tasks at indices, fetched together; a task that never finished (its
        workers kept dying, or the cluster went away): TaskFailed."""
        try:
            return self.client.gather([futures[i] for i in indices])
        except Exception:
            for index in indices:
                try:
                    futures[index].result()
                except Exception as err:
                    raise failure(name, index, "the cluster", one_line(err)) from None
            raise
