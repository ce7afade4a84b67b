"""The training loop: smoke runs with TensorBoard tags, resume after SIGKILL and Ctrl-C, failure handling."""
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from experiments import checkpoint
from experiments.backends.manual import ManualTrainer
from experiments.config import Config, lr_at
from experiments.train import cli as train_command
from experiments.train import train_and_evaluate
from tests.events import load_events
from tests.tolerances import TRAINED_F64

SMALL = dict(limit_train=600, batch_size=100, epochs=1)
CONFIGS = pathlib.Path(__file__).resolve().parent.parent / "configs"


def train_cli(*flags, wait=True):
    cmd = [sys.executable, "-m", "experiments.train", "--quiet", *flags]
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_smoke_both_backends_log_every_tag(tmp_path):
    results = train_and_evaluate(Config(backend="both", **SMALL), str(tmp_path), quiet=True)
    assert set(results) == {"manual", "torch"}
    for name in ("manual", "torch"):
        acc = load_events(tmp_path / name)
        scalars = set(acc.Tags()["scalars"])
        assert {"train/loss", "train/lr", "test/loss", "test/accuracy", "time/epoch_seconds"} <= scalars
        assert {"grad_norm/0.weight", "grad_norm/4.bias"} <= scalars
        assert {"weights/0.weight", "grads/4.weight"} <= set(acc.Tags()["histograms"])
        assert len(acc.Scalars("train/loss")) == 6
        assert set(acc.PluginTagToContent("hparams")) == {"_hparams_/session_start_info", "_hparams_/session_end_info"}
        assert {"hparams/test_accuracy", "hparams/test_loss"} <= scalars
        with np.load(tmp_path / name / "final.npz", allow_pickle=False) as final:
            assert sorted(final.files) == ["0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight"]
        assert results[name].test_accuracy > 0.5
    assert {"agreement/param_drift", "agreement/grad_rel_error"} <= set(load_events(tmp_path / "manual").Tags()["scalars"])
    assert (tmp_path / "final.npz").exists() and (tmp_path / "config.json").exists()


def test_same_initial_weights_and_batches_give_close_results(tmp_path):
    results = train_and_evaluate(Config(backend="both", dtype="float64", **SMALL), str(tmp_path), quiet=True)
    manual, torch = results["manual"], results["torch"]
    for key in manual.init_state:
        assert np.array_equal(manual.init_state[key], torch.init_state[key])
        np.testing.assert_allclose(manual.final_state[key], torch.final_state[key], **TRAINED_F64)


def test_cosine_schedule_starts_at_lr_and_decays_each_epoch():
    cfg = Config(lr=0.1, epochs=4)
    rates = [lr_at(cfg, e) for e in range(4)]
    assert rates[0] == 0.1 and all(a > b > 0 for a, b in zip(rates, rates[1:]))
    assert rates[2] == pytest.approx(0.05)
    assert lr_at(Config(lr=0.1, epochs=4, lr_schedule="constant"), 3) == 0.1


RESUME_FLAGS = ["--backend", "manual", "--dtype", "float64", "--limit-train", "2000", "--batch-size", "20",
                "--epochs", "3", "--optimizer", "adam", "--lr", "0.001"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("whole"))
    done = train_cli(*RESUME_FLAGS, "--run-dir", run_dir, "--overwrite")
    assert done.returncode == 0, done.stderr
    return checkpoint.load_arrays(os.path.join(run_dir, "final.npz"))


def wait_for(path, proc, epoch=0, seconds=120):
    """Poll until the checkpoint at path records at least `epoch` finished epochs."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(path) or int(checkpoint.load(path)["meta"]["epoch"]) < epoch:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline, f"{path} never reached epoch {epoch}"
        time.sleep(0.02)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=lambda sig: sig.name)
def test_resume_after_kill_equals_uninterrupted_run_bitwise(tmp_path, uninterrupted, sig):
    run_dir = str(tmp_path)
    proc = train_cli(*RESUME_FLAGS, "--run-dir", run_dir, wait=False)
    wait_for(os.path.join(run_dir, "manual", "checkpoint.npz"), proc, epoch=1)  # now inside epoch 2
    proc.send_signal(sig)
    code = proc.wait(timeout=60)
    assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 130)
    assert not os.path.exists(os.path.join(run_dir, "final.npz"))
    meta = checkpoint.load(os.path.join(run_dir, "manual", "checkpoint.npz"))["meta"]
    if sig == signal.SIGINT:
        assert int(meta["batch"]) > 0  # the Ctrl-C checkpoint is mid-epoch
    done = train_cli("--resume", "--run-dir", run_dir)
    assert done.returncode == 0, done.stderr
    resumed = checkpoint.load_arrays(os.path.join(run_dir, "final.npz"))
    for key, value in uninterrupted.items():
        assert np.array_equal(resumed[key], value), key
    steps = [e.step for e in load_events(os.path.join(run_dir, "manual")).Scalars("train/loss")]
    assert steps == sorted(set(steps)) and len(steps) == 3 * 100  # no duplicated steps after the restart


@pytest.mark.slow
def test_ctrl_c_in_the_first_epoch_of_both_backends_resumes(tmp_path):
    flags = ["--backend", "both", "--optimizer", "sgd", "--limit-train", "1000", "--batch-size", "10",
             "--epochs", "2", "--run-dir", str(tmp_path)]
    proc = train_cli(*flags, wait=False)
    wait_for(os.path.join(tmp_path, "torch", "checkpoint.npz"), proc)  # written before the first step
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    done = train_cli("--resume", "--run-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "torch" / "final.npz").exists() and (tmp_path / "manual" / "final.npz").exists()


@pytest.mark.slow
def test_divergence_stops_with_step_and_layer(tmp_path):
    done = train_cli("--backend", "manual", "--limit-train", "500", "--batch-size", "50", "--lr", "1e12",
                     "--epochs", "1", "--run-dir", str(tmp_path))
    assert done.returncode == 3
    message = done.stderr.strip().splitlines()[-1]
    assert "step 1 " in message and "parameter 0.weight" in message and "Traceback" not in done.stderr


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_divergence_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    steps = {"n": 0}
    real_step = ManualTrainer.step

    def poisoned(self, x, y):
        steps["n"] += 1
        if steps["n"] == 9:  # in epoch 2: epoch 1 has 6 steps
            self.net.params["2.weight"][0, 0] = np.inf
        return real_step(self, x, y)

    monkeypatch.setattr(ManualTrainer, "step", poisoned)
    cfg = Config(backend="manual", **{**SMALL, "epochs": 2})
    from experiments.backends import Diverged
    with pytest.raises(Diverged, match=r"step 9 \(epoch 2\).*first non-finite gradient: 0\.weight"):
        train_and_evaluate(cfg, str(tmp_path), quiet=True)
    saved = checkpoint.load(str(tmp_path / "manual" / "checkpoint.npz"))
    assert int(saved["meta"]["epoch"]) == 1 and int(saved["meta"]["step"]) == 6
    assert all(np.isfinite(v).all() for v in saved["param"].values())


def test_corrupted_checkpoint_is_refused_with_its_path(tmp_path, capsys):
    train_and_evaluate(Config(backend="manual", limit_train=300, batch_size=100, epochs=1), str(tmp_path), quiet=True)
    path = tmp_path / "manual" / "checkpoint.npz"
    path.write_bytes(path.read_bytes()[:200])
    assert train_command.main(["--resume", "--run-dir", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("python -m experiments.train: error: ") and str(path) in err[0], err


@pytest.mark.slow
@pytest.mark.parametrize("flags, words", [
    (["--lr", "-1"], "--lr"),
    (["--batch-size", "zero"], "--batch-size"),
    (["--optimizer", "rmsprop"], "--optimizer"),
    (["--arch", "chain"], "--arch"),
    (["--init", "glorot"], "init"),
    (["--hidden", "64,x"], "--hidden"),
    (["--arch", "lenet", "--hidden", "64"], "--hidden"),
    (["--epochs", "0"], "--epochs"),
])
def test_invalid_flags_give_one_line_errors(tmp_path, flags, words):
    done = train_cli(*flags, "--run-dir", str(tmp_path / "x"))
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and words in errors[0] and "Traceback" not in done.stderr


def resolved(*argv):
    """(Config, run_dir) that `python -m experiments.train ARGV` would train, without training."""
    p = train_command.parser()
    return train_command.resolve(p, p.parse_args(argv))


def test_config_file_with_flags_overriding_it(tmp_path):
    cfg, _ = resolved("--config", str(CONFIGS / "mlp-sigmoid.json"), "--epochs", "2", "--run-dir", str(tmp_path))
    assert (cfg.arch, cfg.optimizer, cfg.lr, cfg.batch_size, cfg.init) == ("mlp-sigmoid", "sgd", 0.5, 10, "lecun_normal")
    assert cfg.epochs == 2   # the flag, not the file's 30


@pytest.mark.parametrize("content, words", [("[1, 2]", "JSON object"), ('{"lr": -1}', "--lr"),
                                            ('{"learning_rate": 1}', "unknown config key"), ("{", "--config")])
def test_a_bad_config_file_is_one_line_error(tmp_path, capsys, content, words):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(SystemExit) as exit_:
        resolved("--config", str(path))
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and words in err[0] and str(path) in err[0], err
