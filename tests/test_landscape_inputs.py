"""The landscape command's inputs and outputs on a bad day: --from-runs checked run by run, duplicate schemes
refused, --overwrite never deleting an input, a busy --logdir refused, Ctrl-C one line."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from experiments import exits
from experiments.config import Config
from experiments.landscape import cli
from experiments.lock import DirectoryLock
from experiments.train import train_and_evaluate

TINY = ["--resolution", "3", "--eval-samples", "32", "--sharpness-dirs", "1", "--workers", "1"]


def landscape(*argv):
    """cli.main's exit code (argparse's SystemExit code for a bad flag)."""
    try:
        return cli.main([*TINY, *argv])
    except SystemExit as stop:
        return stop.code


def one_error_line(capsys, *words):
    err = capsys.readouterr().err.strip().splitlines()
    err = [line for line in err if "error" in line]
    assert len(err) == 1 and all(w in err[0] for w in words), err
    return err[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A folder holding one finished run, kaiming_normal-s0."""
    folder = tmp_path_factory.mktemp("runs")
    cfg = Config(backend="manual", init="kaiming_normal", epochs=1, limit_train=64, batch_size=32, dtype="float64")
    train_and_evaluate(cfg, str(folder / "kaiming_normal-s0"), quiet=True)
    return folder


def test_overwrite_never_deletes_an_input_run(finished, tmp_path, capsys):
    logdir = tmp_path / "L"
    shutil.copytree(finished, logdir)   # --from-runs L/kaiming_normal-s0 --logdir L: the output is the input
    run = logdir / "kaiming_normal-s0"
    assert landscape("--from-runs", str(run), "--logdir", str(logdir), "--overwrite") == exits.USAGE
    one_error_line(capsys, f"would delete {run}", "input run")
    assert (run / "final.npz").exists() and (run / "config.json").exists()


def test_an_unfinished_run_is_refused_by_name(finished, tmp_path, capsys):
    runs = tmp_path / "runs"
    shutil.copytree(finished, runs)
    shutil.copytree(runs / "kaiming_normal-s0", runs / "half")
    os.remove(runs / "half" / "final.npz")
    assert landscape("--from-runs", str(runs), "--logdir", str(tmp_path / "L")) == exits.USAGE
    one_error_line(capsys, f"{runs / 'half'} is unfinished")


def test_a_malformed_config_json_is_one_line_naming_it(finished, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished / "kaiming_normal-s0", run)
    (run / "config.json").write_text("{")
    assert landscape("--from-runs", str(run), "--logdir", str(tmp_path / "L")) == exits.FAILED
    one_error_line(capsys, str(run / "config.json"))


def test_a_final_npz_of_another_architecture_is_refused_with_its_path(finished, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished / "kaiming_normal-s0", run)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "hidden": [32]}))
    assert landscape("--from-runs", str(run), "--logdir", str(tmp_path / "L")) == exits.FAILED
    one_error_line(capsys, str(run / "final.npz"), "not the parameters of mlp")


@pytest.mark.parametrize("inits", [["kaiming", "kaiming_normal"], ["normal", "normal:0.01"]])
def test_one_scheme_under_two_names_is_refused(tmp_path, capsys, inits):
    assert landscape("--inits", *inits, "--logdir", str(tmp_path / "L")) == exits.USAGE
    one_error_line(capsys, f"--inits: {inits[1]} names a scheme given already")


def test_a_second_landscape_into_a_busy_logdir_is_refused(finished, tmp_path, capsys):
    logdir = str(tmp_path / "L")
    with DirectoryLock(logdir, "--logdir"):
        assert landscape("--from-runs", str(finished), "--logdir", logdir) == exits.BUSY
    one_error_line(capsys, f"--logdir {logdir} is in use by another job (PID {os.getpid()})")
    assert os.listdir(logdir) == []


@pytest.mark.slow
def test_ctrl_c_during_a_landscape_is_one_line_and_exit_130(tmp_path):
    logdir = tmp_path / "L"
    proc = subprocess.Popen([sys.executable, "-m", "experiments.landscape", "--resolution", "21", "--epochs", "1",
                             "--limit-train", "3000", "--batch-size", "10", "--inits", "kaiming_normal", "--seeds",
                             "0", "--workers", "1", "--logdir", str(logdir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoint = tmp_path / "L-train" / "kaiming_normal-s0" / "manual" / "checkpoint.npz"
    deadline = time.monotonic() + 120
    while not checkpoint.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    errors = [line for line in err.splitlines() if "error" in line]
    assert proc.returncode == exits.INTERRUPTED, err
    assert "Traceback" not in err and len(errors) == 1 and "SIGINT" in errors[0], err
