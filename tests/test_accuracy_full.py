"""Full MNIST training to target accuracy (marker `full`, run by `make test-full`)."""
import pytest

from experiments.config import Config
from experiments.train import train_and_evaluate

pytestmark = pytest.mark.full


def accuracy(results):
    """{backend: final test accuracy}, also printed (make test-full shows it) for README."""
    accuracies = {name: r.test_accuracy for name, r in results.items()}
    print({name: f"{100 * a:.2f}%" for name, a in accuracies.items()})
    return accuracies


def test_mlp_reaches_98_2_with_each_backend_and_they_agree_in_float64(tmp_path):
    results = train_and_evaluate(Config(arch="mlp", backend="both", dtype="float64"), str(tmp_path), quiet=True)
    accuracies = accuracy(results)
    assert min(accuracies.values()) >= 0.982, accuracies
    assert abs(accuracies["manual"] - accuracies["torch"]) <= 0.001, accuracies


def test_lenet_reaches_99_0_with_each_backend(tmp_path):
    results = train_and_evaluate(Config(arch="lenet", backend="both", epochs=8), str(tmp_path), quiet=True)
    accuracies = accuracy(results)
    assert min(accuracies.values()) >= 0.990, accuracies


def test_textbook_sigmoid_net_reaches_95_4_with_each_backend(tmp_path):
    cfg = Config(arch="mlp-sigmoid", backend="both", optimizer="sgd", lr=0.5, batch_size=10, epochs=30,
                 init="lecun_normal")  # weights N(0, 1/fan_in): the textbook's "improved" initialisation
    results = train_and_evaluate(cfg, str(tmp_path), quiet=True)
    accuracies = accuracy(results)
    assert min(accuracies.values()) >= 0.954, accuracies
