"""Every claims experiment's --quick setting, run into a temporary folder: its CSV, PNGs and TensorBoard events."""
import glob
import importlib
import subprocess
import sys

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from experiments.claims import harness
from tests.tolerances import CHAIN_AUTOGRAD

MODULES = ("chain_depth",)


def run_quick(name, out, *flags):
    """Run experiments.claims.<name> --quick into out; returns its CSV files as lists of rows."""
    module = importlib.import_module(f"experiments.claims.{name}")
    assert module.main(["--quick", "--out", str(out), *flags]) == 0
    return {path.rsplit("/", 1)[1]: harness.read_csv(path) for path in glob.glob(f"{out}/*.csv")}


def floats(rows, key):
    return np.array([float(r[key]) for r in rows])


def scalars(out, run="summary"):
    """{tag: [(step, value), ...]} from OUT/tb/<run>."""
    acc = EventAccumulator(str(out / "tb" / run), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def assert_pngs(out, *names):
    for name in names:
        with open(out / name, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", name


@pytest.mark.parametrize("name", MODULES)
def test_help_runs_without_training(name):
    result = subprocess.run([sys.executable, "-m", f"experiments.claims.{name}", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--quick" in result.stdout and "--workers" in result.stdout and "full setting" in result.stdout


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
