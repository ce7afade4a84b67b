"""Permutation alignment: a relabelled net computes the same function on both backends, both matchings recover a
random relabelling exactly (barrier 0), weight matching's sweeps, and bad input refused naming the layer."""
import numpy as np
import pytest
import torch

import manual
import torch_ref
from experiments.landscape import align, surfaces
from experiments.landscape.evaluate import Evaluator
from manual import spec as S
from manual.gradcheck import rel_error
from manual.optim import SGD
from tests.random_arch import batch
from tests.tolerances import ROUNDING_F64, SAME_WEIGHTS_FORWARD

ARCHS = {
    "mlp": (S.Linear(20, 16), S.ReLU(), S.Linear(16, 12), S.Tanh(), S.Dropout(0.2), S.Linear(12, 5)),
    "conv": (S.Conv2d(1, 4, 3, padding=1), S.ReLU(), S.MaxPool2d(2),            # (N, 4, 6, 6)
             S.Conv2d(4, 6, 3), S.ReLU(), S.MaxPool2d(2),                        # (N, 6, 2, 2)
             S.Flatten(), S.Linear(24, 8), S.Tanh(), S.Linear(8, 5)),
    "one-unit": (S.Linear(20, 1), S.Sigmoid(), S.Linear(1, 5)),
}
INPUT = {"mlp": (20,), "conv": (1, 12, 12), "one-unit": (20,)}


def inputs(name, n=200, seed=0):
    """Seeded standard-normal inputs and random labels in the shape arch `name` takes."""
    return batch((n, *INPUT[name]), 5, [seed, 1])


def trained(name, seed=0, steps=20):
    """A float64 state dict of arch `name` after `steps` SGD steps on random data (no symmetric weights left)."""
    net = manual.build(ARCHS[name], init="kaiming_normal", seed=seed, dtype="float64")
    x, y = inputs(name, seed=seed)
    opt = SGD(net.params, lr=0.05, momentum=0.9)
    for step in range(steps):
        lo = 50 * (step % 4)
        opt.step(net.loss_and_grads(x[lo:lo + 50], y[lo:lo + 50], reduction="mean")[1])
    return net.state_dict()


def outputs(name, state):
    """(manual, torch) outputs of arch `name` holding state, on fresh inputs, in eval mode."""
    x = inputs(name, n=64, seed=9)[0]
    net = manual.build(ARCHS[name], init="zeros", dtype="float64").eval()
    net.load_state_dict(state)
    module = torch_ref.build(ARCHS[name], dtype="float64").eval()
    module.load_state_dict(torch_ref.from_numpy(state))
    with torch.no_grad():
        return net.forward(x), module(torch.from_numpy(x)).numpy()


def test_groups_follow_flatten_blocks_and_taps():
    groups = align.permutation_groups(ARCHS["conv"])
    assert [(g.layer, g.next, g.size, g.block, g.tap) for g in groups] == [(0, 3, 4, 1, 1), (3, 7, 6, 4, 4),
                                                                           (7, 9, 8, 1, 8)]
    lenet = align.permutation_groups(S.get("lenet"))
    assert [(g.size, g.block) for g in lenet] == [(6, 1), (16, 25), (120, 1), (84, 1)]


@pytest.mark.parametrize("name", ARCHS)
def test_a_permuted_net_computes_the_same_function_on_both_backends(name):
    state = trained(name)
    perms = align.random_permutation(ARCHS[name], np.random.default_rng(3))
    permuted = align.permute(state, ARCHS[name], perms)
    moved = [k for k in state if not np.array_equal(state[k], permuted[k])]
    assert moved == ([] if name == "one-unit" else [k for k in state if k != f"{len(ARCHS[name]) - 1}.bias"])
    for before, after in zip(outputs(name, state), outputs(name, permuted)):
        assert rel_error(before, after) <= SAME_WEIGHTS_FORWARD


@pytest.mark.parametrize("name", ARCHS)
def test_both_matchings_recover_a_random_permutation_exactly_and_the_barrier_is_zero(name):
    arch, state = ARCHS[name], trained(name)
    applied = align.random_permutation(arch, np.random.default_rng(4))
    copy = align.permute(state, arch, applied)
    x, y = inputs(name)
    evaluate = Evaluator(arch, x, y, dtype="float64")
    alphas = surfaces.path_alphas(8, extend=0)
    raw = surfaces.barrier(surfaces.interpolate(evaluate, state, copy, alphas))
    assert (raw > 0.01) == (name != "one-unit"), raw
    hidden = align._hidden(align._net(arch, state), x, align.permutation_groups(arch))
    assert all(h.std(axis=1).min() > 0 for h in hidden)             # no dead unit: the correlation decides all
    aligned_w, perms_w, sweeps = align.weight_matching(arch, state, copy)
    aligned_a, perms_a = align.activation_matching(arch, state, copy, x, chunk=64)
    for aligned, perms in ((aligned_w, perms_w), (aligned_a, perms_a)):
        for p, q in zip(perms, applied):
            np.testing.assert_array_equal(p, np.argsort(q))
        for key in state:
            np.testing.assert_array_equal(aligned[key], state[key], err_msg=key)
        path = surfaces.interpolate(evaluate, state, aligned, alphas)
        assert abs(surfaces.barrier(path)) <= ROUNDING_F64["rtol"] * path["loss"][0]
    assert sweeps == 1 if name == "one-unit" else 2 <= sweeps < 100  # a sweep that changes something, one that does not


def inner(a, b):
    """<a, b> over every tensor of two state dicts."""
    return sum(float(np.sum(a[k] * b[k])) for k in a)


@pytest.mark.parametrize("name", ["mlp", "conv"])
def test_weight_matching_of_two_seeds_raises_the_similarity_and_reports_its_sweeps(name):
    arch = ARCHS[name]
    a, b = trained(name, seed=0), trained(name, seed=1)
    aligned, perms, sweeps = align.weight_matching(arch, a, b)
    assert 1 <= sweeps < 100
    assert inner(a, aligned) > inner(a, b)
    assert align.weight_matching(arch, a, aligned)[2] == 1          # already aligned: one sweep changes nothing
    assert align.weight_matching(arch, a, b, max_sweeps=1)[2] == 1
    assert inner(a, aligned) >= inner(a, align.weight_matching(arch, a, b, max_sweeps=1)[0])


def test_activation_matching_does_not_depend_on_the_chunk_size():
    a, b = trained("conv", seed=0), trained("conv", seed=1)
    x = inputs("conv")[0]
    whole = align.activation_matching(ARCHS["conv"], a, b, x, chunk=len(x))[1]
    chunked = align.activation_matching(ARCHS["conv"], a, b, x, chunk=33)[1]
    for p, q in zip(whole, chunked):
        np.testing.assert_array_equal(p, q)


def test_a_float32_state_is_permuted_in_float32():
    state = {k: v.astype(np.float32) for k, v in trained("mlp").items()}
    aligned = align.activation_matching(ARCHS["mlp"], state, state, inputs("mlp")[0].astype(np.float32))[0]
    assert all(v.dtype == np.float32 and np.array_equal(v, state[k]) for k, v in aligned.items())


@pytest.mark.parametrize("arch, match", [
    ((S.Linear(4, 3), "relu", S.Linear(3, 2)), "layer 1 is 'relu'; alignment supports"),
    ((S.Conv2d(1, 3, 3), S.ReLU(), S.Flatten(), S.Linear(10, 2)), r"layer 3 \(Linear\(10, 2\)\): 10 inputs"),
    ((S.Conv2d(1, 3, 3), S.ReLU(), S.Linear(12, 2)), r"layer 2 \(Linear\(12, 2\)\) follows the Conv2d"),
    ((S.Linear(4, 3), S.Conv2d(3, 2, 1)), r"layer 1 \(Conv2d\(3, 2, 1, 1, 0\)\): alignment needs"),
    ((), "at least one layer"),
])
def test_an_arch_alignment_cannot_follow_is_refused_naming_the_layer(arch, match):
    with pytest.raises(ValueError, match=match):
        align.permutation_groups(arch)


def test_state_dicts_of_another_arch_are_refused_naming_the_key():
    arch, a = ARCHS["mlp"], trained("mlp")
    wider_arch = (S.Linear(20, 17), S.ReLU(), S.Linear(17, 12), *arch[3:])
    wider = manual.build(wider_arch, dtype="float64").state_dict()
    with pytest.raises(ValueError, match=r"state_b\['0.weight'\] of layer 0 \(Linear\(20, 16\)\): .* \(17, 20\)"):
        align.weight_matching(arch, a, wider)
    with pytest.raises(ValueError, match=r"state_a lacks '2.bias' of layer 2"):
        align.activation_matching(arch, {k: v for k, v in a.items() if k != "2.bias"}, a, inputs("mlp")[0])
    with pytest.raises(ValueError, match="state_b has key '9.weight'"):
        align.weight_matching(arch, a, {**a, "9.weight": a["0.weight"]})
    with pytest.raises(ValueError, match=r"permutation of layer 2 \(Linear\(16, 12\)\) is not a permutation"):
        align.permute(a, arch, [np.arange(16), np.zeros(12, int)])
    with pytest.raises(ValueError, match="max_sweeps must be a positive int"):
        align.weight_matching(arch, a, a, max_sweeps=0)
