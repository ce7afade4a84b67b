"""Initializers: each scheme's distribution on a large layer, conv fans, seeding and draw order, bad names."""
import math

import numpy as np
import pytest

import manual
from manual import spec
from manual.init import fans
from tests.tolerances import INIT_SPREAD

FAN_IN, FAN_OUT = 1000, 500
# scheme -> (distribution, expected std of the weights of Linear(FAN_IN, FAN_OUT))
EXPECTED = {
    "xavier_uniform": ("uniform", math.sqrt(2 / (FAN_IN + FAN_OUT))),
    "xavier_normal": ("normal", math.sqrt(2 / (FAN_IN + FAN_OUT))),
    "kaiming_uniform": ("uniform", math.sqrt(2 / FAN_IN)),
    "kaiming_normal": ("normal", math.sqrt(2 / FAN_IN)),
    "lecun_normal": ("normal", math.sqrt(1 / FAN_IN)),
    "normal": ("normal", 0.01),
    "normal:0.05": ("normal", 0.05),
    "uniform": ("uniform", 0.1 / math.sqrt(3)),
    "uniform:0.2": ("uniform", 0.2 / math.sqrt(3)),
    "torch_default": ("uniform", 1 / math.sqrt(3 * FAN_IN)),  # kaiming_uniform(a=sqrt(5)): bound 1/sqrt(fan_in)
}


def large_layer(init, seed=0, dtype="float64"):
    """(weight, bias) of a freshly built Linear(FAN_IN, FAN_OUT)."""
    net = manual.build((spec.Linear(FAN_IN, FAN_OUT),), init=init, seed=seed, dtype=dtype)
    return net.params["0.weight"], net.params["0.bias"]


@pytest.mark.parametrize("init", EXPECTED)
def test_each_scheme_draws_its_distribution_with_its_std(init):
    distribution, std = EXPECTED[init]
    weight, _ = large_layer(init)
    assert abs(weight.std() / std - 1) < INIT_SPREAD
    assert abs(weight.mean()) < INIT_SPREAD * std
    peak = np.abs(weight).max() / std
    if distribution == "uniform":                             # U(-a, a): std a/sqrt(3), |w| <= a, reached closely
        assert math.sqrt(3) * (1 - INIT_SPREAD) < peak <= math.sqrt(3)
    else:                                                     # 500,000 normal draws reach past 4 std
        assert peak > 4


@pytest.mark.parametrize("init", [name for name in EXPECTED if name != "torch_default"] + ["zeros"])
def test_biases_start_at_zero_except_under_torch_default(init):
    assert not large_layer(init)[1].any()


def test_torch_default_draws_the_bias_from_the_weight_bound():
    bias = large_layer("torch_default")[1]
    bound = 1 / math.sqrt(FAN_IN)
    assert 0.9 * bound < np.abs(bias).max() <= bound


def test_zeros_gives_zero_weights():
    assert not large_layer("zeros")[0].any()


def test_conv_fans_count_the_kernel_like_torch():
    assert fans((16, 6, 5, 5)) == (150, 400)
    assert fans((120, 400)) == (400, 120)
    weight = manual.build(spec.get("lenet"), init="xavier_uniform").params["3.weight"]   # Conv2d(6, 16, 5)
    bound = math.sqrt(6 / (150 + 400))
    assert (1 - INIT_SPREAD) * bound < np.abs(weight).max() <= bound


def test_draws_come_layer_by_layer_weight_then_bias_from_one_generator():
    net = manual.build(spec.get("mlp", hidden=(7,)), init="torch_default", seed=3)
    rng = np.random.default_rng(3)
    for key, fan_in in [("0.weight", 784), ("0.bias", 784), ("2.weight", 7), ("2.bias", 7)]:
        bound = 1 / math.sqrt(fan_in)
        np.testing.assert_array_equal(net.params[key], rng.uniform(-bound, bound, net.params[key].shape))


def test_same_seed_same_weights_other_seed_other_weights_any_dtype():
    w0, w0_again, w1 = (large_layer("kaiming_normal", seed=s)[0] for s in (0, 0, 1))
    np.testing.assert_array_equal(w0, w0_again)
    assert not np.allclose(w0, w1)
    w0_32 = large_layer("kaiming_normal", seed=0, dtype="float32")[0]
    assert w0_32.dtype == np.float32
    np.testing.assert_array_equal(w0_32, w0.astype(np.float32))


def test_aliases_name_the_original_schemes():
    np.testing.assert_array_equal(large_layer("kaiming")[0], large_layer("kaiming_normal")[0])
    np.testing.assert_array_equal(large_layer("xavier")[0], large_layer("xavier_uniform")[0])


@pytest.mark.parametrize("init, message", [
    ("glorot", "valid: xavier_uniform, .*lecun_normal.*torch_default"),
    ("kaiming_normal:2", "takes no parameter"),
    ("normal:abc", "not a number"),
    ("uniform:-1", ">= 0"),
    ("normal:nan", ">= 0"),
])
def test_bad_init_names_raise(init, message):
    with pytest.raises(ValueError, match=message):
        manual.build(spec.get("mlp", hidden=(3,)), init=init)
