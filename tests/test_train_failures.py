"""What a bad day does to training: every failure is one line with its exit code (experiments.exits), nothing is
written by a refused command, a killed or stopped run can go on, and the torch backend's checkpoints are checked
as strictly as the manual one's."""
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from experiments import checkpoint, exits, io
from experiments.backends.manual import ManualTrainer
from experiments.config import Config, arch_of
from experiments.lock import NAME as LOCK_FILE
from experiments.lock import DirectoryLock
from experiments.train import cli, loop

TINY = ["--backend", "manual", "--limit-train", "200", "--batch-size", "100", "--epochs", "1",
        "--lr-schedule", "constant"]


def train(*argv):
    """cli.main's exit code (argparse's SystemExit code for a bad flag)."""
    try:
        return cli.main(["--quiet", *argv])
    except SystemExit as stop:
        return stop.code


def one_error_line(capsys, *words):
    """stderr's only line, checked to hold every word and no traceback."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error" in err[0] and all(w in err[0] for w in words), err
    return err[0]


def snapshot(folder):
    """{path: bytes} of every file under folder."""
    return {os.path.join(root, n): open(os.path.join(root, n), "rb").read()
            for root, _, names in os.walk(folder) for n in names}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("finished"))
    assert train(*TINY, "--run-dir", run_dir) == 0
    return run_dir


@pytest.fixture
def no_data(monkeypatch):
    """Loading MNIST fails the test: the checks must come first."""
    def load(*args, **kwargs):
        raise AssertionError("the data loaded before the run directory was checked")
    monkeypatch.setattr(loop.data, "load", load)


@pytest.mark.parametrize("flags, words", [
    (["--seed", str(2**64)], "--seed"), (["--momentum", "1.5"], "--momentum"),
    (["--limit-train", "70000"], "--limit-train"), (["--seed", "-1"], "--seed")])
def test_out_of_range_values_are_one_line_naming_the_flag_exit_2(tmp_path, capsys, no_data, flags, words):
    assert train(*flags, "--run-dir", str(tmp_path)) == exits.USAGE
    assert one_error_line(capsys, words).endswith("(see --help)")


@pytest.mark.parametrize("where", ["a-file", "under-a-file"])
def test_a_run_dir_that_is_a_file_or_under_one_is_refused_before_the_data_loads(tmp_path, capsys, no_data, where):
    (tmp_path / "f").write_text("")
    run_dir = str(tmp_path / "f" if where == "a-file" else tmp_path / "f" / "run")
    assert train(*TINY, "--run-dir", run_dir) == exits.FAILED
    one_error_line(capsys, f"--run-dir {run_dir} cannot be used")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_run_dir_is_refused_before_the_data_loads(tmp_path, capsys, no_data):
    tmp_path.chmod(0o555)
    try:
        assert train(*TINY, "--run-dir", str(tmp_path / "run")) == exits.FAILED
    finally:
        tmp_path.chmod(0o755)
    one_error_line(capsys, "--run-dir", "Permission denied")


def test_resume_with_a_config_json_that_is_a_directory_is_one_line_naming_it(tmp_path, capsys, no_data):
    (tmp_path / "config.json").mkdir()
    assert train("--resume", "--run-dir", str(tmp_path)) == exits.FAILED
    one_error_line(capsys, str(tmp_path / "config.json"), "Is a directory")


def test_resuming_a_finished_run_says_so_and_writes_nothing(finished, capsys):
    before = snapshot(finished)
    assert train("--resume", "--run-dir", finished) == exits.OK
    assert "is complete: all 1 epochs trained" in capsys.readouterr().out
    assert snapshot(finished) == before


@pytest.mark.parametrize("meta, words", [({"epoch": np.int64(-1)}, "meta/epoch"),
                                         ({"epoch": np.array([0, 1])}, "meta/epoch"),
                                         ({"batch": np.int64(10**9)}, "meta/batch"),
                                         ({"step": np.float64(2)}, "meta/step")])
def test_a_refused_resume_writes_nothing_and_names_the_checkpoint(finished, tmp_path, capsys, meta, words):
    run_dir = str(tmp_path / "run")
    shutil.copytree(finished, run_dir)
    path = os.path.join(run_dir, "manual", "checkpoint.npz")
    groups = checkpoint.load(path)
    groups["meta"].update(meta)
    checkpoint.save(path, groups)
    before = snapshot(run_dir)
    assert train("--resume", "--epochs", "2", "--run-dir", run_dir) == exits.FAILED
    one_error_line(capsys, path, words)
    assert snapshot(run_dir) == before   # config.json still says 1 epoch


def test_two_trainings_into_one_run_dir_the_second_is_refused_naming_the_holder(tmp_path, capsys, no_data):
    with DirectoryLock(str(tmp_path), "--run-dir"):   # as a first training would hold it
        assert train(*TINY, "--run-dir", str(tmp_path)) == exits.BUSY
    one_error_line(capsys, f"--run-dir {tmp_path} is in use by another job (PID {os.getpid()})")
    assert os.listdir(tmp_path) == []


def test_a_run_releases_its_lock_and_removes_stale_temporaries(tmp_path):
    stale = tmp_path / "manual" / ".tmp-x1checkpoint.npz"
    stale.parent.mkdir()
    stale.write_bytes(b"half a checkpoint")
    assert train(*TINY, "--run-dir", str(tmp_path)) == exits.OK
    assert not stale.exists() and not (tmp_path / LOCK_FILE).exists()


def test_overwrite_deletes_only_what_a_run_writes(finished, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(finished, run_dir)
    (run_dir / "notes.txt").write_text("mine")
    assert train(*TINY, "--run-dir", str(run_dir), "--overwrite") == exits.OK
    assert (run_dir / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("backend", ["manual", "torch"])
def test_huge_finite_weights_stop_with_exit_3_naming_step_and_layer(tmp_path, capsys, backend):
    argv = [*TINY, "--backend", backend, "--batch-size", "200", "--lr", "1e12", "--run-dir", str(tmp_path)]
    assert train(*argv) == exits.DIVERGED
    line = one_error_line(capsys, f"{backend}: step 1 (epoch 1)", "parameter", "of Linear(", "limit 1e+08")
    assert "kept in" in line


def test_a_nan_evaluation_stops_the_run_with_exit_3(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(ManualTrainer, "evaluate", lambda self, x, y: (float("nan"), 0.1))
    assert train(*TINY, "--run-dir", str(tmp_path)) == exits.DIVERGED
    one_error_line(capsys, "manual: step 2 (epoch 1)", "test loss is nan")
    assert not (tmp_path / "final.npz").exists()
    assert int(checkpoint.load(str(tmp_path / "manual" / "checkpoint.npz"))["meta"]["epoch"]) == 0


def test_out_of_memory_shapes_are_one_line_exit_4(tmp_path, capsys):
    assert train(*TINY, "--hidden", "4000000000", "--run-dir", str(tmp_path)) == exits.OUT_OF_MEMORY
    one_error_line(capsys, "out of memory")


def test_a_full_disk_is_one_line_naming_the_file_exit_5_and_leaves_no_empty_file(tmp_path, capsys, monkeypatch):
    def full(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(io.os, "fsync", full)
    assert train(*TINY, "--run-dir", str(tmp_path)) == exits.DISK_FULL
    one_error_line(capsys, "disk full", str(tmp_path / "manual" / "checkpoint.npz"))
    assert [f for _, _, names in os.walk(tmp_path) for f in names] == []


# The torch backend's checkpoint: every key, shape and dtype, the optimizer's state too

def torch_run(tmp_path, optimizer):
    from experiments.backends.torch import TorchTrainer

    cfg = Config(backend="torch", optimizer=optimizer, hidden=(8,), epochs=1)
    arch = arch_of(cfg)
    init = ManualTrainer(arch, cfg, __import__("manual").build(arch, seed=0, dtype="float32").state_dict())
    run = loop.Run(TorchTrainer(arch, cfg, init.state_dict()), str(tmp_path), loop.Result("torch", {}))
    run.save()
    return run


@pytest.mark.parametrize("optimizer, group, key, value, words", [
    ("momentum", "param", "0.bias", np.zeros(1, np.float32), "param/0.bias is float32 (1,)"),
    ("momentum", "param", "0.weight", np.zeros((8, 784), np.int64), "param/0.weight is int64"),
    ("momentum", "optim", "2.weight.momentum_buffer", None, "missing ['2.weight.momentum_buffer']"),
    ("adam", "optim", "0.weight.step", None, "missing ['0.weight.step']"),
    ("adam", "optim", "0.bias.step", np.float32(-1), "optim/0.bias.step must be a whole number"),
    ("adam", "optim", "0.bias.exp_avg_sq", np.zeros(3, np.float32), "optim/0.bias.exp_avg_sq is float32 (3,)"),
    ("sgd", "rng", "torch", np.zeros(7, np.uint8), "rng/torch is uint8 (7,)"),
])
def test_the_torch_backend_refuses_a_checkpoint_that_does_not_fit_with_its_path(tmp_path, optimizer, group, key,
                                                                                 value, words):
    run = torch_run(tmp_path, optimizer)
    groups = checkpoint.load(run.checkpoint_path)
    if value is None:
        del groups[group][key]
    else:
        groups[group][key] = value
    checkpoint.save(run.checkpoint_path, groups)
    with pytest.raises(checkpoint.CheckpointError, match=rf"{run.checkpoint_path}: does not fit .*{__import__('re').escape(words)}"):
        run.restore(1, 2)


def test_the_torch_backend_restores_its_own_checkpoint(tmp_path):
    run = torch_run(tmp_path, "adam")
    run.restore(1, 2)
    assert (run.epoch, run.batch, run.step) == (0, 0, 0)


# Signals and kills, in real processes

def train_process(*flags, code=""):
    """A training process; code runs first (e.g. to plant a SIGKILL at a chosen point)."""
    script = f"import sys\n{code}\nfrom experiments.train import cli\nsys.exit(cli.main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", script, "--quiet", *flags], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


KILL_AFTER = """import os, signal
from experiments.train import loop
real = loop.{name}
def killed(*args):
    real(*args)
    os.kill(os.getpid(), signal.SIGKILL)
loop.{name} = killed"""


@pytest.mark.slow
@pytest.mark.parametrize("point", ["Run.save", "write_config"])
def test_a_run_killed_at_its_start_can_be_restarted_or_resumed(tmp_path, point):
    run_dir = str(tmp_path)
    flags = [*TINY, "--backend", "manual", "--run-dir", run_dir]
    name = point.split(".")[-1]
    code = KILL_AFTER.format(name=point) if "." not in point else KILL_AFTER.replace(
        "real = loop.{name}", "real = loop.Run.save").replace("loop.{name} = killed", "loop.Run.save = killed")
    proc = train_process(*flags, code=code.format(name=name))
    assert proc.wait(timeout=120) == -signal.SIGKILL
    if point == "Run.save":   # killed after its first checkpoint, before config.json: not a run yet, start again
        assert not os.path.exists(os.path.join(run_dir, "config.json"))
        again = train_process(*flags)
    else:                     # killed after config.json: every checkpoint is there, resume it
        again = train_process("--resume", "--run-dir", run_dir)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert os.path.exists(os.path.join(run_dir, "final.npz"))


@pytest.mark.slow
def test_sigterm_writes_a_checkpoint_and_exits_143_then_resumes(tmp_path):
    run_dir = str(tmp_path)
    flags = ["--backend", "manual", "--limit-train", "3000", "--batch-size", "10", "--epochs", "2", "--run-dir", run_dir]
    proc = train_process(*flags)
    path = os.path.join(run_dir, "manual", "checkpoint.npz")
    deadline = time.monotonic() + 120
    while not os.path.exists(os.path.join(run_dir, "config.json")):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == exits.TERMINATED, err
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    meta = checkpoint.load(path)["meta"]
    assert int(meta["step"]) > 0
    again = train_process("--resume", "--run-dir", run_dir)
    assert again.wait(timeout=300) == 0


STARTED = """from experiments.exits import launch
print("started", flush=True)
launch("experiments.train.cli", "python -m experiments.train")"""   # experiments/train/__main__.py, and a print


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.1, 0.5])
def test_ctrl_c_while_the_command_loads_is_one_line_and_exit_130(tmp_path, delay):
    # the shim of `python -m experiments.train` once it runs (Python's own startup, site and .pth files and the
    # module search, is not the project's code): delay seconds into loading the command
    proc = subprocess.Popen([sys.executable, "-c", STARTED, *TINY, "--run-dir", str(tmp_path), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)   # no bar: only the error
    assert proc.stdout.readline().strip() == "started"
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == exits.INTERRUPTED, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_a_second_training_process_into_a_busy_run_dir_exits_6(tmp_path):
    flags = ["--backend", "manual", "--limit-train", "3000", "--batch-size", "10", "--epochs", "2",
             "--run-dir", str(tmp_path)]
    first = train_process(*flags)
    try:
        deadline = time.monotonic() + 120
        while not os.path.exists(tmp_path / "config.json"):
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        second = train_process(*flags, "--overwrite")
        out, err = second.communicate(timeout=120)
        assert second.returncode == exits.BUSY, err
        assert f"is in use by another job (PID {first.pid})" in err and len(err.strip().splitlines()) == 1
    finally:
        first.kill()
        first.wait()
