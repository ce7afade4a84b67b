"""--device: cpu | cuda | auto for the torch side; the manual backend refuses cuda; cuda without a GPU is one line
(exit 2) before any data loads; on a GPU, the torch results equal the CPU's (those tests skip without one)."""
import numpy as np
import pytest
import torch

import manual
from experiments import compare as compare_command
from experiments.agreement import compare
from experiments.backends.torch import TorchTrainer
from experiments.config import Config, arch_of
from experiments.devices import NO_CUDA, resolve
from experiments.landscape import cli as landscape_command
from experiments.landscape import curvature
from experiments.landscape.directions import random_directions
from experiments.landscape.evaluate import Evaluator, ManualEvaluation
from experiments.train import cli as train_command
from experiments.train import train_and_evaluate
from manual import spec
from tests.tolerances import DEVICE_F64, DEVICE_TRAINED_F64, HVP_AGREE

GPU = torch.cuda.is_available()
needs_gpu = pytest.mark.skipif(not GPU, reason="needs a CUDA device (torch.cuda.is_available() is False)")
without_gpu = pytest.mark.skipif(GPU, reason="checks the refusal of cuda on a machine without a GPU")
SMALL = dict(limit_train=600, batch_size=100, epochs=1)


def one_error_line(capsys, run):
    """(exit code, the single stderr line) of run(), which must exit through argparse's error."""
    with pytest.raises(SystemExit) as exit_:
        run()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return exit_.value.code, err[0]


def test_cpu_is_the_default_and_auto_follows_torch():
    assert Config().device == "cpu" and resolve("cpu") == "cpu"
    assert resolve("auto") == ("cuda" if GPU else "cpu")


def test_an_unknown_device_is_refused_naming_the_flag():
    with pytest.raises(ValueError, match="--device 'tpu' is invalid"):
        Config(device="tpu")


@pytest.mark.parametrize("argv, words", [
    (["--backend", "manual", "--device", "cuda"], "manual backend is NumPy on the CPU"),
    (["--device", "gpu"], "--device"),
])
def test_train_refuses_manual_on_cuda_and_unknown_devices(tmp_path, capsys, argv, words):
    code, line = one_error_line(capsys, lambda: train_command.main([*argv, "--run-dir", str(tmp_path / "r")]))
    assert code == 2 and words in line
    assert not (tmp_path / "r").exists()


def test_both_backends_may_ask_for_cuda():
    assert Config(backend="both", device="cuda").backends == ("manual", "torch")   # torch on the GPU, manual on CPU


@without_gpu
@pytest.mark.parametrize("backend", ["torch", "both"])
def test_train_on_cuda_without_a_gpu_is_one_line_before_the_data(tmp_path, capsys, backend):
    argv = ["--backend", backend, "--device", "cuda", "--run-dir", str(tmp_path / "r"),
            "--data-dir", str(tmp_path / "no-data")]
    code, line = one_error_line(capsys, lambda: train_command.main(argv))
    assert code == 2 and NO_CUDA in line
    assert not (tmp_path / "r").exists() and not (tmp_path / "no-data").exists()


def test_landscape_refuses_manual_on_cuda(tmp_path, capsys):
    argv = ["--backend", "manual", "--device", "cuda", "--logdir", str(tmp_path / "l")]
    code, line = one_error_line(capsys, lambda: landscape_command.main(argv))
    assert code == 2 and "manual backend is NumPy on the CPU" in line and not (tmp_path / "l").exists()


@without_gpu
@pytest.mark.parametrize("flags", [["--backend", "torch"], ["--curvature-backend", "torch"]])
def test_landscape_on_cuda_without_a_gpu_is_one_line(tmp_path, capsys, flags):
    argv = [*flags, "--device", "cuda", "--logdir", str(tmp_path / "l"), "--data-dir", str(tmp_path / "no-data")]
    code, line = one_error_line(capsys, lambda: landscape_command.main(argv))
    assert code == 2 and NO_CUDA in line and not (tmp_path / "l").exists()


@without_gpu
def test_compare_on_cuda_without_a_gpu_is_one_line(capsys):
    code, line = one_error_line(capsys, lambda: compare_command.main(["--device", "cuda"]))
    assert code == 2 and NO_CUDA in line


def test_compare_on_auto_reports_where_torch_ran(capsys):
    assert compare_command.main(["--arch", "mlp", "--device", "auto"]) == 0
    assert f"torch on {'cuda' if GPU else 'cpu'}" in capsys.readouterr().out


def test_the_numpy_engines_refuse_cuda():
    arch = spec.get("mlp", hidden=(8,))
    state = manual.build(arch, seed=0).state_dict()
    x, y = np.zeros((2, 784)), np.zeros(2, np.int64)
    with pytest.raises(ValueError, match="manual backend is NumPy on the CPU"):
        ManualEvaluation(arch, "float64", "cuda")
    with pytest.raises(ValueError, match="manual backend is NumPy on the CPU"):
        curvature.operator("manual", arch, state, x, y, device="cuda")


def small_mnist(n=200):
    rng = np.random.default_rng(0)
    return rng.random((n, 784)), rng.integers(0, 10, n)


@needs_gpu
@pytest.mark.parametrize("arch", ["mlp", "lenet", "mlp-sigmoid"])
def test_agreement_on_cuda_in_float64(arch):
    rows = compare(spec.get(arch), "float64", batch_size=8, device="cuda")
    assert all(r.ok for r in rows), [r.message() for r in rows if not r.ok]


@needs_gpu
def test_a_torch_epoch_on_cuda_equals_the_cpu_one(tmp_path):
    runs = {d: train_and_evaluate(Config(backend="torch", dtype="float64", device=d, **SMALL), str(tmp_path / d),
                                  quiet=True)["torch"] for d in ("cpu", "cuda")}
    for key, value in runs["cpu"].final_state.items():
        assert isinstance(runs["cuda"].final_state[key], np.ndarray)
        np.testing.assert_allclose(runs["cuda"].final_state[key], value, **DEVICE_TRAINED_F64, err_msg=key)
    np.testing.assert_allclose(runs["cuda"].test_loss, runs["cpu"].test_loss, **DEVICE_TRAINED_F64)


@needs_gpu
def test_a_cuda_trainer_saves_and_restores_its_state_on_the_cpu():
    cfg = Config(backend="torch", arch="lenet", dtype="float64", device="cuda")
    arch = arch_of(cfg)
    init = manual.build(arch, seed=0, dtype="float64").state_dict()
    a = TorchTrainer(arch, cfg, init)
    x, y = np.random.default_rng(0).random((4, 1, 28, 28)), np.arange(4)
    a.step(x, y)
    saved = a.state_dict(), a.optimizer_state(), a.rng_state()
    assert "cuda" in saved[2] and all(isinstance(v, np.ndarray) for v in saved[0].values())
    after = a.step(x, y)
    b = TorchTrainer(arch, cfg, init)
    b.load(*saved)                                           # the generators too: the same dropout masks again
    assert b.step(x, y) == after


@needs_gpu
@pytest.mark.parametrize("arch", ["mlp", "lenet"])
def test_landscape_torch_evaluation_on_cuda_equals_the_cpu(arch):
    layers = spec.get(arch)
    x, y = small_mnist()
    x = x.reshape(-1, 1, 28, 28) if arch == "lenet" else x
    centre = manual.build(layers, init="kaiming_normal", seed=0).state_dict()
    dirs = random_directions(centre, 2, seed=1)
    coords = np.array([[0.0, 0.0], [0.4, -0.7], [-1.0, 1.0]])
    got = {d: Evaluator(layers, x, y, backend="torch", chunk=64, device=d)(centre, dirs, coords)
           for d in ("cpu", "cuda")}
    for i, what in enumerate(("loss", "accuracy")):
        np.testing.assert_allclose(got["cuda"][i], got["cpu"][i], **DEVICE_F64, err_msg=what)


@needs_gpu
def test_torch_hessian_products_on_cuda_equal_the_cpu():
    layers = spec.get("mlp", hidden=(32,))
    x, y = small_mnist(64)
    state = manual.build(layers, seed=0).state_dict()
    ops = {d: curvature.operator("torch", layers, state, x, y, device=d) for d in ("cpu", "cuda")}
    v = np.random.default_rng(1).standard_normal(ops["cpu"].shape[0])
    a, b = ops["cuda"].matvec(v), ops["cpu"].matvec(v)
    assert np.abs(a - b).max() <= HVP_AGREE * np.abs(b).max()
