"""The sweep runner: the same float64 bits serially, on a local cluster and on a scheduler with separate workers;
a worker killed mid-sweep, an unreachable scheduler and a failing task; one BLAS and torch thread per task."""
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import manual
from experiments.landscape.directions import random_directions
from experiments.landscape.evaluate import Evaluator
from experiments.landscape.surfaces import axis, plane
from experiments import sweep as sweep_module
from experiments.claims import chain_depth
from experiments.landscape import cli as landscape_cli
from experiments.sweep import SchedulerUnreachable, Sweep, TaskFailed, report
from manual import spec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCH = spec.get("mlp", hidden=(32, 16))
RESOLUTION = 5                              # grid points per axis of each job's surface
JOBS = [{"seed": seed} for seed in range(4)]
STARTUP = 60                                # seconds a subprocess scheduler and its workers get to come up


def surface(job):
    """(loss, accuracy) on a 5x5 plane around a seeded mlp, float64, on seeded random data; reports each point."""
    rng = np.random.default_rng(job["seed"])
    x, y = rng.standard_normal((300, 784)), rng.integers(0, 10, 300)
    centre = manual.build(ARCH, init="kaiming_normal", seed=job["seed"], dtype="float64").state_dict()
    directions = random_directions(centre, 2, seed=[job["seed"], 1])
    evaluate = Evaluator(ARCH, x, y, dtype="float64", chunk=128)
    loss, acc = evaluate(centre, directions, plane(axis(1.0, RESOLUTION), axis(1.0, RESOLUTION)), report)
    time.sleep(job.get("sleep", 0))
    return loss, acc


def fails(job):
    if job["seed"] == 2:
        raise ValueError("bad seed\n2")
    return job["seed"]


def threads(_):
    """(BLAS thread counts of the loaded BLAS libraries, torch's thread count) inside a task."""
    import torch
    from threadpoolctl import threadpool_info

    return sorted({p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}), torch.get_num_threads()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A `dask scheduler` and `dask worker`s on 127.0.0.1, each a subprocess of this test, with two BLAS threads
    in their environment; killed when the with block ends."""

    def __init__(self, workers=2):
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
        self.scheduler = self.start("distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port",
                                    self.address.rsplit(":", 1)[1])
        self.workers = [self.start("distributed.cli.dask_worker", self.address, "--nthreads", "1", "--no-nanny",
                                   "--host", "127.0.0.1", "--name", f"w{k}") for k in range(workers)]

    def start(self, module, *args):
        return subprocess.Popen([sys.executable, "-m", module, *args, "--no-dashboard", "--dashboard-address",
                                 "127.0.0.1:0"], cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    @contextlib.contextmanager
    def sweep(self):
        """A Sweep on this cluster, once every worker has joined."""
        with Sweep(scheduler=self.address, connect_timeout=STARTUP) as sweep:
            sweep.client.wait_for_workers(len(self.workers), timeout=STARTUP)
            yield sweep

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for process in [*self.workers, self.scheduler]:   # no graceful shutdown to wait for: a test cluster
            if process.poll() is None:
                process.kill()
            process.wait()


@pytest.fixture(scope="module")
def expected():
    """The serial results and the progress they reported."""
    progress = []
    with Sweep(workers=1) as sweep:
        results = sweep.map(surface, JOBS, progress=progress.append)
    assert sum(progress) == pytest.approx(len(JOBS) * RESOLUTION ** 2)
    return results


@pytest.fixture(scope="module")
def cluster():
    with Cluster() as running, running.sweep() as sweep:
        yield sweep


def same(results, expected):
    """Every (loss, accuracy) array equal bit for bit."""
    assert len(results) == len(expected)
    for got, want in zip(results, expected):
        for a, b in zip(got, want):
            assert a.dtype == b.dtype == np.float64
            assert a.tobytes() == b.tobytes()


def test_serial_and_local_cluster_agree_bitwise(expected):
    progress, finished = [], []
    with Sweep(workers=2) as sweep:
        assert sweep.cluster is not None
        results = sweep.map(surface, JOBS, progress=progress.append, finished=finished.append)
    same(results, expected)
    assert sorted(finished) == list(range(len(JOBS)))
    assert sum(progress) == pytest.approx(len(JOBS) * RESOLUTION ** 2)


@pytest.mark.slow
def test_scheduler_with_worker_processes_agrees_bitwise(expected, cluster):
    progress = []
    same(cluster.map(surface, JOBS, progress=progress.append), expected)
    assert sum(progress) == pytest.approx(len(JOBS) * RESOLUTION ** 2)


def torch_threads(count):
    """Outside any task: give torch `count` threads; returns torch's count."""
    import torch

    torch.set_num_threads(count)
    return torch.get_num_threads()


@pytest.mark.slow
def test_task_pins_blas_and_torch_to_one_thread(cluster):
    assert set(cluster.client.run(torch_threads, 2).values()) == {2}    # workers' BLAS: 2 threads by environment
    for blas, torch_count in cluster.map(threads, [0, 1]):
        assert blas == [1] and torch_count == 1


@pytest.mark.slow
def test_failing_task_names_worker_and_error(cluster):
    with pytest.raises(TaskFailed) as info:
        cluster.map(fails, JOBS)
    message = str(info.value)
    assert "\n" not in message
    assert "fails failed on job 2 at worker tcp://127.0.0.1:" in message
    assert message.endswith("ValueError: bad seed 2")


def test_failing_task_serially():
    with Sweep(workers=1) as sweep, pytest.raises(TaskFailed, match=r"job 2 at this process .*ValueError: bad seed 2$"):
        sweep.map(fails, JOBS)


@pytest.mark.slow
def test_killed_worker_mid_sweep_gives_same_results(expected):
    slow = [{**job, "sleep": 0.3} for job in JOBS for _ in range(2)]          # 8 jobs, 4 per worker
    want = [r for r in expected for _ in range(2)]
    done = []
    with Cluster() as running, running.sweep() as sweep:
        victim = running.workers[0]

        def kill_after_first(index):
            """SIGKILL the first worker as the first result arrives: both workers are busy then."""
            done.append(index)
            if len(done) == 1:
                os.kill(victim.pid, signal.SIGKILL)

        results = sweep.map(surface, slow, finished=kill_after_first)
        assert victim.wait(timeout=10) == -signal.SIGKILL
    assert sorted(done) == list(range(len(slow)))
    same(results, want)


def test_unreachable_scheduler_is_one_line_within_timeout():
    address = f"tcp://127.0.0.1:{free_port()}"                               # nothing listens there
    start = time.monotonic()
    with pytest.raises(SchedulerUnreachable) as info, Sweep(scheduler=address, connect_timeout=2):
        pass
    assert time.monotonic() - start < 2 + 10
    assert "\n" not in str(info.value) and address in str(info.value)


@pytest.mark.parametrize("command", ["landscape", "claims"])
def test_commands_exit_2_on_unreachable_scheduler(command, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(sweep_module, "CONNECT_TIMEOUT", 1)
    address = f"tcp://127.0.0.1:{free_port()}"
    if command == "landscape":
        argv = ["--resolution", "3", "--logdir", str(tmp_path / "tb"), "--scheduler", address]
        assert landscape_cli.main(argv) == 2
    else:
        assert chain_depth.main(["--quick", "--out", str(tmp_path), "--scheduler", address]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"python -m experiments.{'landscape' if command == 'landscape' else 'claims.chain_depth'}"
                              f": error: cannot reach the Dask scheduler at {address}")


def test_scheduler_from_environment(monkeypatch):
    monkeypatch.setenv("BACKPROP_LAB_SCHEDULER", "tcp://127.0.0.1:1")
    assert Sweep(workers=1).scheduler == "tcp://127.0.0.1:1" and not Sweep(workers=1).serial


def test_bad_worker_count():
    with pytest.raises(ValueError, match="workers must be >= 1, got 0"):
        Sweep(workers=0)
