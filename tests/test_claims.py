"""Every claims experiment's --quick setting, run into a temporary folder: its CSV, PNGs and TensorBoard events."""
import argparse
import csv
import glob
import importlib
import json
import subprocess
import sys

import numpy as np
import pytest

import manual
from experiments import data
from experiments.claims import gd_variants, harness, solutions
from experiments.config import arch_of
from experiments.sweep import TaskFailed
from tests.events import load_events
from tests.tolerances import AGREE_F32, CHAIN_AUTOGRAD, ROUNDING_F32, ROUNDING_F64, TRAJECTORY

MODULES = ("chain_depth", "backend_agreement", "gd_variants", "init_dependence", "overparam")


def read_csv(path):
    """A CSV written by harness.write_csv as a list of dicts of strings."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_quick(name, out, *flags):
    """Run experiments.claims.<name> --quick into out; returns its CSV files as lists of rows."""
    module = importlib.import_module(f"experiments.claims.{name}")
    assert module.main(["--quick", "--out", str(out), *flags]) == 0
    assert "took" in (out / "findings.txt").read_text()
    return {path.rsplit("/", 1)[1]: read_csv(path) for path in glob.glob(f"{out}/*.csv")}


def floats(rows, key):
    return np.array([float(r[key]) for r in rows])


def scalars(out, run="summary"):
    """{tag: [(step, value), ...]} from OUT/tb/<run>."""
    acc = load_events(out / "tb" / run)
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def assert_path_ends_are_the_runs(pairs, runs, group):
    """Each straight path's end losses are the training-subset losses its two runs report: the same weights and
    images (a pair row naming the wrong runs, or a path on other images, fails)."""
    loss = {(r[group], r["seed"]): float(r["train_loss"]) for r in runs if r.get("activation", "relu") == "relu"}
    for p in pairs:
        np.testing.assert_allclose([float(p["loss_a"]), float(p["loss_b"])],
                                   [loss[p[group], p["seed_a"]], loss[p[group], p["seed_b"]]], **ROUNDING_F32)


def assert_pngs(out, *names):
    for name in names:
        with open(out / name, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", name


@pytest.mark.slow
@pytest.mark.parametrize("name", MODULES)
def test_help_runs_without_training(name):
    result = subprocess.run([sys.executable, "-m", f"experiments.claims.{name}", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--quick" in result.stdout and "--workers" in result.stdout and "full setting" in result.stdout


@pytest.mark.parametrize("name", MODULES)
def test_failure_is_one_error_line(name, tmp_path, capsys):
    out = tmp_path / "a-file"
    out.write_text("")
    module = importlib.import_module(f"experiments.claims.{name}")
    assert module.main(["--quick", "--out", str(out)]) == 1, "OUT is a file: it cannot be locked"
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith(f"python -m experiments.claims.{name}: error: --out {out} cannot be used")
    assert "Traceback" not in "\n".join(err)


def raise_value_error(job):
    raise ValueError(f"bad job {job}")


def test_a_jobs_exception_is_task_failed():
    args = argparse.Namespace(workers=1, scheduler=None)
    with pytest.raises(TaskFailed, match=r"raise_value_error failed on job 0 at this process \(pid \d+\): "
                                         r"ValueError: bad job 7$"):
        harness.parallel_map(raise_value_error, [7], args)


@pytest.mark.slow
def test_chain_depth(tmp_path):
    csvs = run_quick("chain_depth", tmp_path, "--workers", "1")
    grads, training = csvs["chain_gradients.csv"], csvs["chain_training.csv"]
    assert np.all(np.abs(floats(grads, "dL_dw")) <= floats(grads, "bound"))
    assert np.max(floats(grads, "rel_diff")) <= CHAIN_AUTOGRAD
    sigmoid = [r for r in grads if r["activation"] == "sigmoid" and r["layer"] == "1"]
    shallow = np.median([abs(float(r["dL_dw"])) for r in sigmoid if r["depth"] == "2"])
    deep = np.median([abs(float(r["dL_dw"])) for r in sigmoid if r["depth"] == "10"])
    assert deep < shallow * 4.0 ** -8, "sigmoid's first-layer gradient vanishes at least as fast as (1/4)^depth"
    reached = {(r["activation"], r["depth"]) for r in training if r["reached"] == "True"}
    assert ("sigmoid", "2") in reached and ("tanh", "2") in reached
    assert_pngs(tmp_path, "chain_gradient_per_layer.png", "chain_first_layer_vs_depth.png", "chain_steps_to_target.png")
    logged = scalars(tmp_path)
    assert max(v for _, v in logged["autograd_max_rel_diff/sigmoid"]) <= CHAIN_AUTOGRAD
    assert [s for s, _ in logged["gradient_first_layer/tanh"]] == [2, 5, 10]


@pytest.mark.slow
def test_backend_agreement(tmp_path):
    csvs = run_quick("backend_agreement", tmp_path, "--workers", "2")
    agreement, finals = csvs["agreement.csv"], csvs["agreement_final.csv"]
    for dtype in ("float64", "float32"):
        rows = [r for r in agreement if r["dtype"] == dtype]
        steps, diff = floats(rows, "step"), floats(rows, "max_abs_diff")
        assert steps[0] == 0 and diff[0] == 0, "both backends start from the same weights"
        assert np.all(np.diff(steps) > 0) and steps[-1] == 2 * 8, "2 epochs of 1000 images in batches of 128"
        logged = floats(rows, "logged_max_param_diff")
        at_epoch_end = floats(rows, "epoch") % 1 == 0
        np.testing.assert_allclose(logged[at_epoch_end], diff[at_epoch_end], **ROUNDING_F32)
        if dtype == "float64":
            assert np.max(diff) <= TRAJECTORY
        else:
            assert np.all(diff <= AGREE_F32["atol"] + AGREE_F32["rtol"] * floats(rows, "max_abs_param"))
            assert np.max(diff) > 0, "float32 round-off shows up at all"
    f64 = next(r for r in finals if r["dtype"] == "float64")
    assert f64["predictions_differing"] == "0" and f64["manual_test_accuracy"] == f64["torch_test_accuracy"]
    assert float(f64["manual_test_accuracy"]) > 0.5
    assert len(csvs["agreement_losses.csv"]) == 2 * 2
    assert_pngs(tmp_path, "agreement_over_training.png")
    assert set(scalars(tmp_path)) >= {"max_abs_param_diff/float64_s0", "abs_train_loss_diff/float32_s0"}
    assert glob.glob(f"{tmp_path}/runs/float64-s0/manual/events.out.tfevents.*")


@pytest.mark.slow
def test_gd_variants(tmp_path):
    csvs = run_quick("gd_variants", tmp_path)
    curves, finals = csvs["gd_curves.csv"], csvs["gd_final.csv"]
    assert [f["batch_size"] for f in finals] == ["1", "64", "full"]
    assert [int(f["steps"]) for f in finals] == [256, 4, 1], "one budget of 256 examples: 256/B steps"
    cfg = gd_variants.config(gd_variants.QUICK, 1)
    init = manual.build(arch_of(cfg), init=cfg.init, seed=cfg.seed, dtype=cfg.dtype).state_dict()
    start = float(solutions.train_evaluator(cfg, cfg.limit_train)(init)[0][0])
    for f in finals:
        rows = [r for r in curves if r["batch_size"] == f["batch_size"]]
        steps, seconds = floats(rows, "step"), floats(rows, "seconds")
        assert floats(rows, "examples_seen")[-1] == 256 and floats(rows, "examples_seen")[0] == 0
        assert steps[0] == 0 and float(rows[0]["train_loss"]) == start, "each curve starts at the initial weights"
        # one epoch: each snapshot's clock is the epoch's training time in proportion to the steps taken
        np.testing.assert_allclose(seconds, steps / steps[-1] * float(f["train_seconds"]), **ROUNDING_F64)
    sgd = next(f for f in finals if f["batch_size"] == "1")
    assert float(sgd["train_loss"]) < start, "256 SGD steps lower the loss"
    assert np.all(np.isfinite(floats(finals, "sharpness_r0.1")))
    config = json.loads((tmp_path / "runs" / "batch-1" / "config.json").read_text())
    assert (config["optimizer"], config["lr_schedule"]) == ("sgd", "constant"), "plain SGD at one learning rate"
    assert_pngs(tmp_path, "gd_loss_curves.png", "gd_sharpness_accuracy.png")
    assert {"final/test_accuracy", "train_loss_by_examples/batch_1"} <= set(scalars(tmp_path))


@pytest.mark.slow
def test_init_dependence(tmp_path):
    csvs = run_quick("init_dependence", tmp_path, "--workers", "2")
    runs, pairs, symmetry = csvs["init_runs.csv"], csvs["init_pairs.csv"], csvs["init_symmetry.csv"]
    schemes = ("zeros", "normal:0.01", "xavier_uniform", "kaiming_normal", "normal:1.0")
    assert [(r["scheme"], r["seed"]) for r in runs if r["activation"] == "relu"] == \
        [(s, str(seed)) for s in schemes for seed in (0, 1)]
    trained = [r for r in runs if r["diverged"] == "False"]
    assert all(np.isfinite(float(r[k])) for r in trained for k in ("test_loss", "train_loss", "test_accuracy"))
    kaiming = [r for r in runs if r["scheme"] == "kaiming_normal"]
    assert all(float(r["test_accuracy"]) > 0.3 for r in kaiming), "500 images, one epoch: well above chance"
    _, y = data.load("test")
    commonest = np.bincount(y).max() / len(y)                                       # 1135 / 10,000 for MNIST
    for r in (r for r in runs if r["scheme"] == "zeros" and r["activation"] == "relu"):
        assert float(r["test_accuracy"]) == commonest, "relu'(0) = 0: only the output bias learns -> the commonest class"
    relu_zero = [r for r in symmetry if r["run"].startswith("relu-zeros")]
    assert relu_zero and all(float(r["spread"]) == 0 and float(r["max_abs_weight"]) == 0 for r in relu_zero)
    sigmoid_zero = [r for r in symmetry if r["run"] == "sigmoid-zeros-s0"]
    assert all(float(r["spread"]) == 0 for r in sigmoid_zero), "identical units stay identical"
    assert float(max(sigmoid_zero, key=lambda r: int(r["step"]))["max_abs_weight"]) > 0, "yet they do learn"
    assert all(float(r["spread"]) > 0.1 for r in symmetry if r["run"] == "sigmoid-xavier_uniform-s0")
    relu_trained = [r["scheme"] for r in trained if r["activation"] == "relu"]
    assert {p["scheme"] for p in pairs} == {s for s in schemes if relu_trained.count(s) == 2}
    assert all(float(p["distance"]) > 0 for p in pairs)
    assert_path_ends_are_the_runs(pairs, runs, "scheme")
    assert_pngs(tmp_path, "init_spread.png", "init_distances.png", "init_barriers.png", "init_zero_symmetry.png")
    assert "barrier/kaiming_normal" in scalars(tmp_path)


@pytest.mark.slow
def test_overparam(tmp_path):
    csvs = run_quick("overparam", tmp_path, "--workers", "2")
    runs, pairs, widths = csvs["overparam_runs.csv"], csvs["overparam_pairs.csv"], csvs["overparam_widths.csv"]
    assert sorted((int(r["width"]), int(r["seed"])) for r in runs) == [(8, 0), (8, 1), (64, 0), (64, 1)]
    assert all(int(r["params"]) == 784 * int(r["width"]) + int(r["width"]) + 10 * int(r["width"]) + 10 for r in runs)
    assert [(p["width"], p["seed_a"], p["seed_b"]) for p in pairs] == [("8", "0", "1"), ("64", "0", "1")]
    assert np.all(floats(pairs, "distance") > 0) and np.all(np.isfinite(floats(pairs, "barrier")))
    assert_path_ends_are_the_runs(pairs, runs, "width")
    assert [w["trained"] for w in widths] == ["2", "2"]
    per_run = [np.std([float(r["train_loss"]) for r in runs if r["width"] == w["width"]]) for w in widths]
    np.testing.assert_allclose(floats(widths, "train_loss_std"), per_run, **ROUNDING_F64)
    assert np.all(floats(widths, "train_loss_std") > 0), "two seeds, two different solutions"
    assert floats(widths, "train_loss_mean")[1] < floats(widths, "train_loss_mean")[0], "W=64 fits better than W=8"
    assert_pngs(tmp_path, "overparam.png")
    assert [s for s, _ in scalars(tmp_path)["by_width/barrier_mean"]] == [8, 64]
