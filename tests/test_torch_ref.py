"""torch_ref: the same specs as torch.nn.Sequential, and weights moving both ways."""
import numpy as np
import pytest
import torch

import manual
import torch_ref
from manual import spec
from manual.gradcheck import rel_error
from tests.random_arch import input_shape, inputs
from tests.tolerances import AGREE_F32, SAME_WEIGHTS_FORWARD

NAMED = [spec.get("chain", depth=3), spec.get("mlp"), spec.get("mlp-sigmoid"), spec.get("lenet"),
         (spec.Conv2d(1, 2, 3), spec.Tanh(), spec.Dropout(0.3), spec.Flatten(), spec.Linear(1352, 4))]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("arch", NAMED, ids=lambda s: spec.describe(s)[:40])
def test_state_dict_keys_shapes_and_dtypes_match_manual(arch, dtype):
    ours = manual.build(arch, dtype=dtype).state_dict()
    theirs = torch_ref.build(arch, dtype).state_dict()
    assert list(ours) == list(theirs)
    for name, value in theirs.items():
        assert ours[name].shape == tuple(value.shape) and ours[name].dtype == np.dtype(dtype)
        assert value.dtype == torch_ref.torch_dtype(dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("arch", NAMED, ids=lambda s: spec.describe(s)[:40])
def test_torch_default_init_exported_to_manual_gives_the_same_outputs(arch, dtype):
    mod = torch_ref.build(arch, dtype, seed=4).eval()
    net = manual.build(arch, init="zeros", dtype=dtype).eval()
    net.load_state_dict(torch_ref.to_numpy(mod.state_dict()))
    x = inputs(input_shape(arch, 5), 0, dtype)
    with torch.no_grad():
        theirs = mod(torch.tensor(x)).numpy()
    ours = net.forward(x)
    assert ours.dtype == theirs.dtype
    limit = SAME_WEIGHTS_FORWARD if dtype == "float64" else AGREE_F32["rtol"]
    assert rel_error(ours, theirs) <= limit


def test_manual_weights_move_into_torch_and_back_exactly():
    net = manual.build(spec.get("lenet"), init="kaiming", seed=2)
    mod = torch_ref.build(spec.get("lenet"))
    mod.load_state_dict(torch_ref.from_numpy(net.state_dict()))
    back = torch_ref.to_numpy(mod.state_dict())
    assert all(np.array_equal(back[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_conversions_copy_and_keep_dtype(dtype):
    arrays = {"0.weight": np.arange(6, dtype=dtype).reshape(2, 3), "0.bias": np.ones(2, dtype)}
    tensors = torch_ref.from_numpy(arrays)
    arrays["0.weight"][0, 0] = 99
    assert tensors["0.weight"][0, 0].item() == 0 and tensors["0.bias"].dtype == torch_ref.torch_dtype(dtype)
    back = torch_ref.to_numpy(tensors)
    tensors["0.bias"][0] = 7
    assert back["0.bias"][0] == 1 and back["0.weight"].dtype == np.dtype(dtype)


def test_seed_makes_torch_init_reproducible_without_touching_the_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a, b, c = (torch_ref.build(spec.get("mlp-sigmoid"), seed=s).state_dict() for s in (0, 0, 1))
    assert all(torch.equal(a[k], b[k]) for k in a) and not torch.equal(a["0.weight"], c["0.weight"])
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("bad, message", [([spec.ReLU(), "Linear(3, 4)"], r"layer 1 is 'Linear\(3, 4\)', not one of"),
                                          ([torch.nn.ReLU()], r"layer 0 is ReLU\(\), not one of Linear"),
                                          ([], "a spec needs at least one layer")])
def test_unknown_layer_spec_is_a_value_error(bad, message):
    with pytest.raises(ValueError, match=message):
        torch_ref.build(bad)


@pytest.mark.parametrize("dtype", ["float16", "int64", "bogus", None])
def test_unknown_dtype_is_a_value_error(dtype):
    with pytest.raises(ValueError, match="dtype"):
        torch_ref.build(spec.get("mlp-sigmoid"), dtype)
