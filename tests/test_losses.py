"""Cross-entropy and MSE: values, gradients against finite differences, extreme logits, bad inputs."""
import warnings

import numpy as np
import pytest

from manual import gradcheck
from manual.losses import cross_entropy, mse
from tests.tolerances import FINITE_DIFF, ROUNDING_F64


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_cross_entropy_gradient_matches_finite_differences(reduction):
    rng = np.random.default_rng(0)
    logits, y = 3 * rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    assert gradcheck.check_loss(cross_entropy, logits, y, reduction=reduction) <= FINITE_DIFF


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_mse_gradient_matches_finite_differences(reduction):
    rng = np.random.default_rng(1)
    out, target = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    assert gradcheck.check_loss(mse, out, target, reduction=reduction) <= FINITE_DIFF


def test_cross_entropy_is_the_notes_negative_log_likelihood():
    rng = np.random.default_rng(2)
    logits, y = rng.standard_normal((5, 3)), rng.integers(0, 3, 5)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    nll = -np.sum(np.log(probs[np.arange(5), y]))
    total, dsum = cross_entropy(logits, y, reduction="sum")
    mean, dmean = cross_entropy(logits, y, reduction="mean")
    np.testing.assert_allclose([total, mean], [nll, nll / 5], **ROUNDING_F64)
    np.testing.assert_allclose(dsum, probs - np.eye(3)[y], **ROUNDING_F64)
    np.testing.assert_allclose(dmean, dsum / 5, **ROUNDING_F64)


def test_mse_mean_divides_by_the_element_count():
    out, target = np.array([[1.0, 2.0], [3.0, 5.0]]), np.zeros((2, 2))
    assert mse(out, target, reduction="sum")[0] == 39.0
    loss, dout = mse(out, target)
    assert loss == 39.0 / 4
    np.testing.assert_array_equal(dout, 2 * out / 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_finite_and_exact_at_logits_of_1e4(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], dtype)
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, dlogits = cross_entropy(logits, np.array([1, 2]))
    assert loss == 2e4                                        # -log softmax: 2e4 for row 0, 0 for row 1
    np.testing.assert_array_equal(dlogits, [[1, -1, 0], [0, 0, 0]])
    assert dlogits.dtype == dtype


@pytest.mark.parametrize("y, message", [
    (np.array([0, 3]), r"\[0, 3\).*3"), (np.array([-1, 0]), r"\[0, 3\).*-1"),
    (np.array([0.0, 1.0]), "integers"), (np.array([0, 1, 2]), "shape"),
])
def test_cross_entropy_rejects_bad_labels(y, message):
    with pytest.raises(ValueError, match=message):
        cross_entropy(np.zeros((2, 3)), y)


@pytest.mark.parametrize("call, message", [
    (lambda: cross_entropy(np.zeros((2, 3)), np.array([0, 1]), reduction="avg"), "unknown reduction 'avg'"),
    (lambda: cross_entropy(np.zeros(3), np.array([0])), r"shape \(N, classes\), got \(3,\)"),
    (lambda: mse(np.zeros((2, 3)), np.zeros((3, 2))), r"target of shape \(2, 3\) .* got \(\(3, 2\)"),
    (lambda: mse(np.zeros((2, 3), np.float32), np.zeros((2, 3))), "dtype float32, got .*float64"),
    (lambda: mse(np.zeros(2), np.zeros(2), reduction="none"), "unknown reduction 'none'"),
])
def test_losses_reject_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("order", ["C", "F"])
def test_cross_entropy_leaves_the_logits_alone_and_takes_any_integer_labels(order):
    rng = np.random.default_rng(3)
    logits = np.array(rng.standard_normal((300, 4)), order=order)
    kept = logits.copy()
    y = rng.integers(0, 4, 300)
    expected = cross_entropy(logits, y)
    for labels in (y.astype(np.int8), y.astype(np.uint16)):  # int8: y * N would overflow if not widened
        loss, dlogits = cross_entropy(logits, labels)
        assert loss == expected[0]
        np.testing.assert_array_equal(dlogits, expected[1])
    np.testing.assert_array_equal(logits, kept)


def test_cross_entropy_of_an_empty_batch_is_nan_with_mean_like_torch_and_0_with_sum():
    import torch

    logits, y = np.zeros((0, 10)), np.zeros(0, np.int64)
    mean, grad = cross_entropy(logits, y, reduction="mean")
    assert np.isnan(mean) and grad.shape == (0, 10)
    assert np.isnan(torch.nn.functional.cross_entropy(torch.zeros(0, 10), torch.zeros(0, dtype=torch.long)).item())
    assert cross_entropy(logits, y, reduction="sum")[0] == 0.0
