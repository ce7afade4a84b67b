"""What a newcomer sees: hparams sessions, wall times, the agreement charts, accuracy in percent,
short tags, one line per epoch, the landscape bar's clock, snapshots stored once, `make tensorboard`'s flags."""
import io
import os
import re
import shlex
import subprocess

import pytest

from experiments import checkpoint
from experiments.config import Config
from experiments.events import EventWriter, add_session, serve_command
from experiments.landscape import tb
from experiments.progress import FirstUpdateClock
from experiments.train import SNAPSHOTS, train_and_evaluate
from experiments.train import cli as train_command
from tests.events import load_events
from tests.tolerances import AGREE_F32, AGREE_F64

TINY = dict(limit_train=256, batch_size=64, epochs=2)
SESSION_TAGS = {"_hparams_/session_start_info", "_hparams_/session_end_info"}
CARD_TITLE = 30    # characters of a tag TensorBoard's time-series card shows at its default width (measured)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_session_has_no_experiment_tag(tmp_path):
    writer = EventWriter(str(tmp_path))
    add_session(writer, {"init": "kaiming_normal", "lr": 0.05}, {"final_loss": 0.25, "test_loss": float("nan")}, 7)
    writer.close()
    acc = load_events(tmp_path)
    assert set(acc.PluginTagToContent("hparams")) == SESSION_TAGS   # no _hparams_/experiment: no table hidden
    assert [(e.step, e.value) for e in acc.Scalars("hparams/final_loss")] == [(7, 0.25)]
    assert "hparams/test_loss" not in acc.Tags()["scalars"]           # a NaN metric is left out


def test_event_writer_stamps_wall_times(tmp_path):
    writer = EventWriter(str(tmp_path))
    writer.add_scalar("a", 1.0, 1)
    writer.close()
    assert load_events(tmp_path).Scalars("a")[0].wall_time > 1e9      # not 1970


@pytest.mark.parametrize("dtype, tolerance", [("float64", AGREE_F64), ("float32", AGREE_F32)])
def test_both_backends_log_gradient_agreement_drift_and_a_line_per_epoch(tmp_path, dtype, tolerance):
    lines = []
    results = train_and_evaluate(Config(backend="both", dtype=dtype, **TINY), str(tmp_path), quiet=True,
                                 say=lines.append)
    acc = load_events(tmp_path / "manual")
    errors = [e.value for e in acc.Scalars("agreement/grad_rel_error")]
    assert len(errors) == 2 and max(errors) <= tolerance["rtol"]
    assert len(acc.Scalars("agreement/param_drift")) == 2 and "agreement/max_param_diff" not in acc.Tags()["scalars"]
    pattern = r"(manual|torch) +epoch ([12])/2: test accuracy \d+\.\d\d%, test loss \d+\.\d{4}, \d+\.\d s"
    assert [re.fullmatch(pattern, line).groups() for line in lines] == [
        ("manual", "1"), ("torch", "1"), ("manual", "2"), ("torch", "2")], lines
    assert acc.Scalars("test/accuracy")[-1].value == pytest.approx(100 * results["manual"].test_accuracy)


def test_the_gradient_agreement_is_round_off_not_drift(tmp_path):
    train_and_evaluate(Config(backend="both", dtype="float64", **TINY), str(tmp_path), quiet=True)
    acc = load_events(tmp_path / "manual")
    assert max(e.value for e in acc.Scalars("agreement/grad_rel_error")) < 1e-12   # measured ~1e-16


def test_snapshots_are_stored_once(tmp_path):
    train_and_evaluate(Config(backend="manual", **TINY), str(tmp_path), snapshots_per_epoch=2, quiet=True)
    found = [os.path.join(d, f) for d, _, files in os.walk(tmp_path) for f in files if f == SNAPSHOTS]
    assert found == [str(tmp_path / "manual" / SNAPSHOTS)]
    assert len(checkpoint.load(found[0])) == 1 + 2 * TINY["epochs"]


def test_the_landscape_bar_clock_starts_at_the_first_point():
    bar = FirstUpdateClock(total=1000, file=io.StringIO(), mininterval=0)
    bar.start_t -= 3600                    # an hour of training before the first grid point
    bar.update(10)
    assert bar.format_dict["elapsed"] < 60
    bar.update(10)
    remaining = (bar.total - bar.n) / bar.format_dict["rate"]
    assert remaining < 60, f"ETA {remaining:.0f} s"   # a plain tqdm bar: 990 points at 10 per hour, ~99 hours
    bar.close()


def test_pair_tags_fit_a_card_title_and_accuracy_is_in_percent():
    assert len("pair/" + tb.pair_name("kaiming_uniform-s10")) <= CARD_TITLE
    assert "| 97.12% |" in tb.table([{"run": "a", "final_accuracy": 0.9712}])


def test_train_ends_with_a_tensorboard_command_that_exists(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    run_dir = str(tmp_path / "run")
    assert train_command.main(["--backend", "manual", "--limit-train", "256", "--batch-size", "64", "--epochs", "1",
                               "--run-dir", run_dir, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"manual +epoch 1/1: test accuracy", out)
    hint = out.strip().splitlines()[-1]
    assert hint == f"TensorBoard: {serve_command(run_dir)}" and f"make tensorboard LOGDIR={run_dir}" in hint
    exe = re.search(r"\(or (\S+) --logdir", hint).group(1)
    assert os.access(exe, os.X_OK), exe


@pytest.mark.slow
def test_make_tensorboard_takes_logdir_and_port():
    out = subprocess.run(["make", "-n", "tensorboard", "LOGDIR=runs/mlp", "PORT=6123"], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    command = shlex.split(next(line for line in out.splitlines() if "bin/tensorboard" in line))
    assert command[command.index("--logdir") + 1] == "runs/mlp" and command[command.index("--port") + 1] == "6123"
    assert "http://127.0.0.1:6123/?smoothing=0" in out
