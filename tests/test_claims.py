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
from experiments.claims import gd_variants, harness, init_dependence, solutions
from experiments.config import Config, arch_of
from experiments.landscape import align
from experiments.sweep import TaskFailed
from tests.events import load_events
from tests.tolerances import AGREE_F32, CHAIN_AUTOGRAD, ROUNDING_F32, ROUNDING_F64, TRAJECTORY

MODULES = ("chain_depth", "backend_agreement", "gd_variants", "edge_of_stability", "init_dependence", "overparam")


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
    cfg = gd_variants.config(gd_variants.QUICK, 1, gd_variants.QUICK.seeds[0])
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
    assert np.all(floats(finals, "lambda_max") > floats(finals, "lambda_min"))
    assert np.all(floats(finals, "init_lambda_max") > 0)
    assert len(set(floats(finals, "init_lambda_max"))) == 1, "one seed, one init: the same λ_max at init in every job"
    config = json.loads((tmp_path / "runs" / "batch-1-s0" / "config.json").read_text())
    assert (config["optimizer"], config["lr_schedule"]) == ("sgd", "constant"), "plain SGD at one learning rate"
    assert_pngs(tmp_path, "gd_loss_curves.png", "gd_sharpness_accuracy.png")
    assert {"final/test_accuracy", "final/lambda_max", "train_loss_by_examples/batch_1_s0"} <= set(scalars(tmp_path))


def test_edge_of_stability(tmp_path):
    csvs = run_quick("edge_of_stability", tmp_path, "--workers", "1")
    losses, sharpness = csvs["eos_loss.csv"], csvs["eos_sharpness.csv"]
    etas = (0.1, 0.2, 0.3)
    assert sorted({float(r["eta"]) for r in sharpness}) == list(etas)
    for eta in etas:
        mine = [r for r in sharpness if float(r["eta"]) == eta]
        lam = floats(mine, "lambda_max")
        assert np.all(np.isfinite(lam)) and np.all(lam > 0)
        assert np.all(floats(mine, "two_over_eta") == 2 / eta), "the 2/η line is in the CSV"
        assert [int(r["step"]) for r in mine] == list(range(0, 61, 10))
        curve = floats([r for r in losses if float(r["eta"]) == eta], "loss")
        assert len(curve) == 61 and curve[-1] < curve[0], "60 steps of gradient descent lower the loss"
    starts = {r["lambda_max"] for r in sharpness if r["step"] == "0"}
    assert len(starts) == 1, "every η starts from the same weights"
    assert_pngs(tmp_path, "edge_of_stability.png")
    assert {"lambda_max/eta_0.1", "two_over_eta/eta_0.3", "loss/eta_0.2"} <= set(scalars(tmp_path))


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
    relu_zero = [r for r in symmetry if r["run"].startswith("relu-zeros-float32")]
    assert relu_zero and all(float(r["spread"]) == 0 and float(r["max_abs_weight"]) == 0 for r in relu_zero)
    sigmoid_zero = [r for r in symmetry if r["run"] == "sigmoid-zeros-float64-s0"]
    assert len(sigmoid_zero) == 2 * 3, "two hidden layers at the init and two snapshots"
    assert all(float(r["spread"]) == 0 for r in sigmoid_zero), "identical units stay identical, exactly, in float64"
    assert float(max(sigmoid_zero, key=lambda r: int(r["step"]))["max_abs_weight"]) > 0, "yet they do learn"
    assert {r["step"] for r in symmetry if r["run"] == "sigmoid-zeros-float32-s0"} == {r["step"] for r in sigmoid_zero}
    assert all(float(r["spread"]) > 0.1 for r in symmetry if r["run"] == "sigmoid-xavier_uniform-float64-s0")
    relu_trained = [r["scheme"] for r in trained if r["activation"] == "relu"]
    assert {p["scheme"] for p in pairs} == {s for s in schemes if relu_trained.count(s) == 2}
    assert all(float(p["distance"]) > 0 for p in pairs)
    assert_path_ends_are_the_runs(pairs, runs, "scheme")
    assert all(np.isfinite(float(p["barrier_weight"])) and float(p["barrier_weight"]) >= 0 for p in pairs)
    curved = [p for p in pairs if p["bezier_barrier"] != "nan"]
    assert len(curved) == len(pairs), "two seeds: the one pair of each scheme has its Bézier curve"
    assert all(float(p["bezier_max_loss"]) >= max(float(p["bezier_loss_a"]), float(p["bezier_loss_b"]))
               for p in curved)
    assert_pngs(tmp_path, "init_spread.png", "init_distances.png", "init_barriers.png", "init_zero_symmetry.png")
    assert {"barrier/kaiming_normal", "barrier_weight_aligned/kaiming_normal"} <= set(scalars(tmp_path))
    assert "float64 x @ W^T differ by up to 0, d^T x differ by up to 0" in (tmp_path / "findings.txt").read_text()


def test_float64_products_keep_identical_units_identical():
    x, _ = data.load("train", dtype="float64", limit=128)
    assert init_dependence.blas_rounding(x, "float64") == {"x @ W^T": 0.0, "d^T x": 0.0}


@pytest.mark.slow
def test_overparam(tmp_path):
    csvs = run_quick("overparam", tmp_path, "--workers", "2")
    runs, pairs, widths = csvs["overparam_runs.csv"], csvs["overparam_pairs.csv"], csvs["overparam_widths.csv"]
    assert sorted((int(r["width"]), int(r["seed"])) for r in runs) == [(8, 0), (8, 1), (64, 0), (64, 1)]
    assert all(int(r["params"]) == 784 * int(r["width"]) + int(r["width"]) + 10 * int(r["width"]) + 10 for r in runs)
    assert [(p["width"], p["seed_a"], p["seed_b"]) for p in pairs] == [("8", "0", "1"), ("64", "0", "1")]
    assert np.all(floats(pairs, "distance") > 0) and np.all(np.isfinite(floats(pairs, "barrier")))
    assert_path_ends_are_the_runs(pairs, runs, "width")
    for kind in ("barrier_weight", "barrier_activation", "bezier_barrier"):
        assert np.all(np.isfinite(floats(pairs, kind))) and np.all(floats(pairs, kind) >= 0), kind
    assert np.all(floats(pairs, "bezier_max_loss") >= floats(pairs, "bezier_loss_a"))
    np.testing.assert_array_equal(floats(pairs, "bezier_loss_a"), floats(pairs, "loss_a"))   # the same end, exactly
    assert [w["trained"] for w in widths] == ["2", "2"]
    per_run = [np.std([float(r["train_loss"]) for r in runs if r["width"] == w["width"]]) for w in widths]
    np.testing.assert_allclose(floats(widths, "train_loss_std"), per_run, **ROUNDING_F64)
    assert np.all(floats(widths, "train_loss_std") > 0), "two seeds, two different solutions"
    assert floats(widths, "train_loss_mean")[1] < floats(widths, "train_loss_mean")[0], "W=64 fits better than W=8"
    assert_pngs(tmp_path, "overparam.png")
    assert [s for s, _ in scalars(tmp_path)["by_width/barrier_mean"]] == [8, 64]
    assert [s for s, _ in scalars(tmp_path)["by_width/barrier_weight_mean"]] == [8, 64]
    assert_pngs(tmp_path, "overparam_aligned.png")
    assert "barrier = highest loss on the path minus the mean of its two ends" in (tmp_path / "findings.txt").read_text()


def test_a_solution_and_its_own_permutation_have_no_aligned_barrier():
    cfg = Config(backend="manual", arch="mlp", hidden=(16, 8), limit_train=200, epochs=1)
    arch = arch_of(cfg)
    x, y = solutions.training_subset(cfg, 200)
    net = manual.build(arch, init="kaiming_normal", seed=0, dtype=cfg.dtype)
    for xb, yb in data.batches(x, y, 50, 0, 0):
        net.params["0.weight"] -= 0.1 * net.loss_and_grads(xb, yb, reduction="mean")[1]["0.weight"]
    a = net.state_dict()
    b = align.permute(a, arch, align.random_permutation(arch, np.random.default_rng(1)))
    job = solutions.path_jobs({16: [(0, cfg, a), (1, cfg, b)]}, 100, 4, solutions.MATCHINGS, bezier_steps=2)[0]
    row = solutions.pair_summary(solutions.pair_paths(job))
    assert row["barrier"] > 0, "the raw line between a net and its permuted copy leaves the solution"
    assert row["barrier_weight"] == 0 and row["barrier_activation"] == 0, "both matchings undo the permutation"
    assert row["loss_a"] == row["loss_b"] == row["bezier_loss_a"], "the same function at both ends"


def test_loglog_slope_recovers_a_power_law_and_its_error_needs_three_points():
    widths = np.array([8, 16, 32, 64, 128])
    slope, stderr, n = solutions.loglog_slope(widths, 3 * widths ** -0.5)
    assert abs(slope + 0.5) <= 1e-12 and stderr <= 1e-12 and n == 5
    slope, stderr, n = solutions.loglog_slope([8, 16, 32], [1.0, 0.0, 0.25])          # 0 cannot be logged: dropped
    assert abs(slope + 1) <= 1e-12 and np.isnan(stderr) and n == 2
