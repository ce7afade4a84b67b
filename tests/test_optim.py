"""SGD and Adam: hand-computed first steps, convergence on a quadratic, state_dict round trips, bad arguments."""
import io

import numpy as np
import pytest

from manual.optim import SGD, Adam
from tests.random_arch import random_like
from tests.tolerances import OPTIM_HAND, OPTIM_MINIMUM

P0 = np.array([1.0, -2.0])
G1, G2 = np.array([0.5, 0.25]), np.array([-1.0, 0.5])


def two_steps(make):
    """The parameter after one step on G1 and after a second on G2, starting from P0."""
    p = P0.copy()
    opt = make({"p": p})
    opt.step({"p": G1.copy()})
    after1 = p.copy()
    opt.step({"p": G2.copy()})
    return opt, after1, p


# Worked by hand: buf_1 = g_1, buf_2 = momentum buf_1 + (1 - dampening) g_2, p -= lr * buf (or, for Nesterov,
# lr * (g + momentum buf)); weight decay first adds wd * p to g.
SGD_CASES = {
    "plain": (dict(lr=0.1), [0.95, -2.025], [1.05, -2.075]),
    "momentum": (dict(lr=0.1, momentum=0.9), [0.95, -2.025], [1.005, -2.0975]),
    "dampening": (dict(lr=0.1, momentum=0.9, dampening=0.5), [0.95, -2.025], [0.955, -2.0725]),
    "nesterov": (dict(lr=0.1, momentum=0.9, nesterov=True), [0.905, -2.0475], [1.0545, -2.16275]),
    "weight_decay": (dict(lr=0.1, weight_decay=0.1), [0.94, -2.005], [1.0306, -2.03495]),
    "momentum+wd": (dict(lr=0.1, momentum=0.9, weight_decay=0.1), [0.94, -2.005], [0.9766, -2.03945]),
}


@pytest.mark.parametrize("case", SGD_CASES)
def test_sgd_first_two_steps_match_hand_computed(case):
    kwargs, want1, want2 = SGD_CASES[case]
    _, after1, after2 = two_steps(lambda params: SGD(params, **kwargs))
    np.testing.assert_allclose(after1, want1, **OPTIM_HAND)
    np.testing.assert_allclose(after2, want2, **OPTIM_HAND)


def test_adam_first_two_steps_match_hand_computed():
    opt, after1, after2 = two_steps(lambda params: Adam(params, lr=0.1))
    # step 1: m = 0.1 g, v = 0.001 g^2; bias-corrected m / sqrt(v) is g / |g|
    want1 = P0 - 0.1 * G1 / (np.abs(G1) + 1e-8)
    # step 2: m = 0.09 g1 + 0.1 g2, v = 0.000999 g1^2 + 0.001 g2^2, bias corrections 1 - 0.9^2 and 1 - 0.999^2
    m2, v2 = np.array([-0.055, 0.0725]), np.array([0.00124975, 0.0003124375])
    want2 = want1 - (0.1 / 0.19) * m2 / (np.sqrt(v2 / 0.001999) + 1e-8)
    np.testing.assert_allclose(after1, want1, **OPTIM_HAND)
    np.testing.assert_allclose(after2, want2, **OPTIM_HAND)
    state = opt.state_dict()
    np.testing.assert_allclose(state["p.exp_avg"], m2, **OPTIM_HAND)
    np.testing.assert_allclose(state["p.exp_avg_sq"], v2, **OPTIM_HAND)
    assert state["step"] == 2


def test_adam_small_beta1_takes_torchs_other_lerp_branch():
    opt, _, _ = two_steps(lambda params: Adam(params, lr=0.1, betas=(0.3, 0.999)))
    np.testing.assert_allclose(opt.state_dict()["p.exp_avg"], 0.21 * G1 + 0.7 * G2, **OPTIM_HAND)


def test_adam_weight_decay_is_l2_on_the_gradient_not_adamw():
    _, after1, _ = two_steps(lambda params: Adam(params, lr=0.1, weight_decay=0.1))
    g = G1 + 0.1 * P0                                        # [0.6, 0.05]
    np.testing.assert_allclose(after1, P0 - 0.1 * g / (np.abs(g) + 1e-8), **OPTIM_HAND)


# f(p) = sum(a/2 (p - p*)^2) per tensor; with weight decay wd the minimiser is a p* / (a + wd).
A = {"weight": np.array([[1.0, 2.0], [0.5, 3.0]]), "bias": np.array([0.7, 1.5, 2.5])}
STAR = {"weight": np.array([[1.0, -2.0], [0.5, 3.0]]), "bias": np.array([-1.0, 0.25, 2.0])}
CONVERGING = {
    "sgd": (lambda p: SGD(p, lr=0.2), 0.0),
    "momentum": (lambda p: SGD(p, lr=0.1, momentum=0.9), 0.0),
    "dampening": (lambda p: SGD(p, lr=0.1, momentum=0.9, dampening=0.5), 0.0),
    "nesterov": (lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True), 0.0),
    "sgd+wd": (lambda p: SGD(p, lr=0.1, momentum=0.5, weight_decay=0.3), 0.3),
    "adam": (lambda p: Adam(p, lr=0.1), 0.0),
    "adam+wd": (lambda p: Adam(p, lr=0.1, weight_decay=0.3), 0.3),
}


@pytest.mark.parametrize("case", CONVERGING)
def test_converges_to_the_quadratics_known_minimiser(case):
    make, wd = CONVERGING[case]
    params = {k: np.zeros_like(v) for k, v in STAR.items()}
    opt = make(params)
    for _ in range(1000):
        opt.step({k: A[k] * (params[k] - STAR[k]) for k in params})
    for k in params:
        np.testing.assert_allclose(params[k], A[k] * STAR[k] / (A[k] + wd), **OPTIM_MINIMUM)


MAKERS = {
    "momentum": lambda p: SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "nesterov": lambda p: SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda p: Adam(p, lr=0.01, weight_decay=1e-3),
}


@pytest.mark.parametrize("name", MAKERS)
def test_state_dict_through_npz_continues_identically(name):
    rng = np.random.default_rng(0)
    params = {"0.weight": rng.standard_normal((3, 4)), "0.bias": rng.standard_normal(3)}
    opt = MAKERS[name](params)
    for _ in range(5):
        opt.step(random_like(params, rng))
    buffer = io.BytesIO()
    np.savez(buffer, **opt.state_dict())
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as saved:
        state = dict(saved)
    twin_params = {k: v.copy() for k, v in params.items()}
    twin = MAKERS[name](twin_params)
    twin.load_state_dict(state)
    for _ in range(5):
        grads = random_like(params, rng)
        opt.step(grads)
        twin.step(grads)
    for k in params:
        np.testing.assert_array_equal(twin_params[k], params[k])


def test_load_state_dict_rejects_bad_state_and_changes_nothing():
    params = {"w": np.ones((2, 2))}
    opt = Adam(params)
    opt.step({"w": np.full((2, 2), 0.5)})
    good = opt.state_dict()
    other = {"step": np.array(9), **{k: np.full_like(v, 7) for k, v in good.items() if k != "step"}}
    bad_states = [
        ({k: v for k, v in other.items() if k != "w.exp_avg"}, r"missing \['w.exp_avg'\]"),
        ({**other, "w.extra": np.zeros(2)}, r"unexpected \['w.extra'\]"),
        ({**other, "w.exp_avg_sq": np.zeros(4)}, r"'w.exp_avg_sq' must be \(2, 2\) float64, got \(4,\)"),
        ({**other, "w.exp_avg": np.zeros((2, 2), np.float32)}, "'w.exp_avg' must be .* float64, got .* float32"),
        ({**other, "step": np.array(-1)}, r"'step' must be an integer >= 0, got array\(-1\)"),
        ({**other, "step": np.array(1.5)}, r"'step' must be an integer >= 0, got array\(1.5\)"),
    ]
    for bad, message in bad_states:
        with pytest.raises(ValueError, match=message):
            opt.load_state_dict(bad)
        after = opt.state_dict()
        assert after.keys() == good.keys()
        for k in good:
            np.testing.assert_array_equal(after[k], good[k])
    opt.load_state_dict(other)
    assert opt.state_dict()["step"] == 9


@pytest.mark.parametrize("make", [lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
                                  lambda p: Adam(p, weight_decay=0.1)])
def test_float32_stays_float32_in_place_and_grads_are_untouched(make):
    w = np.ones((4, 3), np.float32)
    opt = make({"w": w})
    grad = np.full((4, 3), 0.5, np.float32)
    for _ in range(3):
        opt.step({"w": grad})
    assert opt.params["w"] is w and w.dtype == np.float32 and np.all(w < 1)
    assert all(v.dtype == np.float32 for k, v in opt.state_dict().items() if k != "step")
    np.testing.assert_array_equal(grad, 0.5)


@pytest.mark.parametrize("make, message", [
    (lambda p: SGD(p, lr=-0.1), "Invalid learning rate: -0.1"),
    (lambda p: SGD(p, lr=float("nan")), "Invalid learning rate: nan"),
    (lambda p: SGD(p, lr=0.1, momentum=-0.9), "Invalid momentum value: -0.9"),
    (lambda p: SGD(p, lr=0.1, weight_decay=-1e-4), "Invalid weight_decay value: -0.0001"),
    (lambda p: SGD(p, lr=0.1, nesterov=True), "Nesterov momentum requires a momentum"),
    (lambda p: SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "requires a momentum and zero dampening"),
    (lambda p: Adam(p, lr=-1e-3), "Invalid learning rate: -0.001"),
    (lambda p: Adam(p, betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (lambda p: Adam(p, betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (lambda p: Adam(p, eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (lambda p: Adam(p, weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (lambda p: Adam(p, betas=(0.9, 0.99, 0.999)), r"betas must be a pair, got \(0.9, 0.99, 0.999\)"),
    (lambda p: SGD({}, lr=0.1), "optimizer got an empty parameter list"),
    (lambda p: SGD({"w": np.arange(3)}, lr=0.1), "parameter 'w' must be a writeable float ndarray"),
])
def test_bad_arguments_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make({"w": np.zeros(3)})


@pytest.mark.parametrize("grads, message", [
    ({}, r"grads keys \[\] differ from params keys \['w'\]"),
    ({"w": np.zeros(3), "v": np.zeros(3)}, r"grads keys \['v', 'w'\] differ"),
    ({"w": np.zeros(4)}, r"grad 'w' must be \(3,\) float64, got \(4,\) float64"),
    ({"w": np.zeros(3, np.float32)}, r"grad 'w' must be \(3,\) float64, got \(3,\) float32"),
    ({"w": [0.0, 0.0, 0.0]}, "grad 'w' must be .*, got list"),
])
def test_step_rejects_mismatched_grads(grads, message):
    w = np.ones(3)
    with pytest.raises(ValueError, match=message):
        SGD({"w": w}, lr=0.1).step(grads)
    np.testing.assert_array_equal(w, 1.0)
