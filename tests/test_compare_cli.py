"""The report command: a table per tensor, exit status 1 on any disagreement, one-line errors for bad flags."""
import numpy as np
import pytest
import torch

from experiments import agreement, compare
from manual import spec


def test_lenet_report_passes_and_lists_every_tensor(capsys):
    assert compare.main(["--arch", "lenet", "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    for name in ["output", "loss", "input.grad", "0.weight.grad", "3.bias.grad", "11.weight.grad"]:
        assert f"\n{name} " in out
    assert "FAIL" not in out and "13 of 13 tensors agree" in out


@pytest.mark.parametrize("argv", [
    ["--arch", "mlp", "--hidden", "16,8", "--activation", "tanh", "--dtype", "float32", "--reduction", "mean"],
    ["--arch", "chain", "--depth", "3", "--batch-size", "1"],
    ["--arch", "mlp-sigmoid", "--loss", "mse", "--seed", "7"],
])
def test_custom_architectures_pass(argv, capsys):
    assert compare.main(argv) == 0
    assert "FAIL" not in capsys.readouterr().out


def test_chain_uses_mse(capsys):
    compare.main(["--arch", "chain", "--depth", "2"])
    assert "mse (sum)" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--arch", "resnet"], "invalid choice"),
    (["--arch", "lenet", "--hidden", "8"], "unknown option(s) hidden for 'lenet'"),
    (["--arch", "mlp", "--hidden", "8,x"], "comma-separated list of positive widths"),
    (["--arch", "chain", "--depth", "0"], "'0' must be > 0"),
    (["--batch-size", "-1"], "'-1' must be > 0"),
    (["--dtype", "float16"], "invalid choice"),
    (["--reduction", "none"], "invalid choice"),
])
def test_bad_flags_exit_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit:
        compare.main(argv)
    err = capsys.readouterr().err
    assert exit.value.code == 2 and message in err and err.count("error:") == 1


def test_a_disagreement_fails_and_is_located():
    net, mod = agreement.pair(spec.get("mlp", hidden=(5,), activation="tanh"), "float64")
    with torch.no_grad():
        mod.state_dict()["0.weight"][3, 1] += 1e-6                  # moves hidden unit 3 only
    x = np.random.default_rng(0).standard_normal((4, 784))
    rows = {r.name: r for r in agreement.upstream(net, mod, x)}
    bad = rows["2.weight.grad"]                                      # dL/dW2 = dout^T h: column 3 moves
    assert not bad.ok and not rows["output"].ok and bad.where[1] == 3
    assert bad.message().startswith(f"2.weight.grad (10, 5): max abs diff {bad.max_abs:.3e} at {bad.where}")
    assert rows["0.weight.grad"].where[0] == 3 and not rows["0.weight.grad"].ok  # through tanh'(h_3)
    assert rows["2.bias.grad"].ok


def test_the_exit_status_is_one_on_failure(monkeypatch, capsys):
    failing = agreement.row("0.weight.grad", np.zeros(3), np.array([0.0, 1e-3, 0.0]), rtol=1e-10, atol=1e-12)
    monkeypatch.setattr(compare, "compare", lambda *args: [failing])
    assert compare.main(["--arch", "mlp-sigmoid"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "1.00e-03" in out and "0 of 1 tensors agree, 1 FAIL" in out


@pytest.mark.parametrize("seed", ["-1", str(2**64)])
def test_a_seed_out_of_range_is_one_line_exit_2(capsys, seed):
    with pytest.raises(SystemExit) as exit_:
        compare.main(["--seed", seed])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and "argument --seed" in err[0] and "is not a seed" in err[0], err
