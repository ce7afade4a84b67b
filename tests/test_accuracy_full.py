"""Full MNIST training to target accuracy (marker `full`, run by `make test-full`): the recipes in configs/."""
import pathlib

import pytest

from experiments.config import Config
from experiments.train import train_and_evaluate

pytestmark = pytest.mark.full
CONFIGS = pathlib.Path(__file__).resolve().parent.parent / "configs"


def accuracy(name, run_dir):
    """{backend: final test accuracy} of training configs/<name>.json, also printed (make test-full shows it)."""
    results = train_and_evaluate(Config.from_file(CONFIGS / f"{name}.json"), str(run_dir), quiet=True)
    accuracies = {backend: r.test_accuracy for backend, r in results.items()}
    print(name, {backend: f"{100 * a:.2f}%" for backend, a in accuracies.items()})
    return accuracies


def test_mlp_reaches_98_2_with_each_backend_and_they_agree_in_float64(tmp_path):
    accuracies = accuracy("mlp", tmp_path)
    assert min(accuracies.values()) >= 0.982, accuracies
    assert abs(accuracies["manual"] - accuracies["torch"]) <= 0.001, accuracies


def test_lenet_reaches_99_0_with_each_backend(tmp_path):
    accuracies = accuracy("lenet", tmp_path)
    assert min(accuracies.values()) >= 0.990, accuracies


def test_textbook_sigmoid_net_reaches_95_4_with_each_backend(tmp_path):
    # configs/mlp-sigmoid.json: init lecun_normal, weights N(0, 1/fan_in), the textbook's "improved" initialisation
    accuracies = accuracy("mlp-sigmoid", tmp_path)
    assert min(accuracies.values()) >= 0.954, accuracies
