"""Aligning one solution to another modulo hidden-unit permutations (Ainsworth et al. 2022, "Git Re-Basin").

Relabelling the units of a hidden layer (the rows of its weight and bias, and the matching input columns of the
next Linear or Conv2d) leaves the network's function unchanged. permutation_groups says what each hidden layer's
relabelling moves; weight_matching and activation_matching find the relabelling of net B that brings it closest to
net A. A permutation p means: unit i of the permuted net is unit p[i] of the original.
"""
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

import manual
from manual import spec as S

PARAMETERISED = (S.Linear, S.Conv2d)
ACTIVATIONS = (S.ReLU, S.Sigmoid, S.Tanh)
SUPPORTED = (*PARAMETERISED, *ACTIVATIONS, S.MaxPool2d, S.Flatten, S.Dropout)   # the rest act on each unit alone
CHUNK = 500          # examples per forward pass in activation_matching
STD_GUARD = np.finfo(np.float64).tiny   # added to the correlation's denominator: 0/0 (a constant unit) gives 0
METHODS = ("weight", "activation")      # the matchings align() can use


@dataclass(frozen=True)
class Group:
    """One hidden layer's relabelling: rows of arch[layer]'s weight and bias, input axis 1 of arch[next]'s weight."""

    layer: int    # index in the arch of the Linear/Conv2d whose outputs are relabelled
    next: int     # index of the next Linear/Conv2d, whose inputs follow them
    size: int     # units or channels
    block: int    # consecutive input columns of arch[next] per unit: H*W after a conv and Flatten, else 1
    tap: int      # index of the layer whose output is the hidden activation (the last activation before next)


def _name(arch, i):
    """'layer i (Linear(784, 256))'."""
    return f"layer {i} ({S.describe((arch[i],))})"


def _width(layer):
    """Output units of a Linear, output channels of a Conv2d."""
    return layer.out_features if isinstance(layer, S.Linear) else layer.out_channels


def _group(arch, layer, nxt):
    """The Group of arch[layer], whose outputs feed arch[nxt]; ValueError if alignment cannot follow them."""
    size, between = _width(arch[layer]), arch[layer + 1:nxt]
    flattened = any(isinstance(s, S.Flatten) for s in between)
    conv_in, conv_out = isinstance(arch[layer], S.Conv2d), isinstance(arch[nxt], S.Conv2d)
    if conv_out and (not conv_in or flattened):
        raise ValueError(f"{_name(arch, nxt)}: alignment needs a Conv2d's input to come unflattened from a Conv2d")
    if conv_in and not conv_out and not flattened:
        raise ValueError(f"{_name(arch, nxt)} follows the Conv2d {_name(arch, layer)} without a Flatten")
    inputs = arch[nxt].in_channels if conv_out else arch[nxt].in_features
    if inputs % size or (inputs != size and not (conv_in and not conv_out)):
        raise ValueError(f"{_name(arch, nxt)}: {inputs} inputs do not split into the {size} outputs of "
                         f"{_name(arch, layer)}")
    taps = [i for i in range(layer + 1, nxt) if isinstance(arch[i], ACTIVATIONS)]
    return Group(layer, nxt, size, inputs // size, taps[-1] if taps else layer)


def permutation_groups(arch):
    """One Group per hidden Linear/Conv2d of arch (every one but the last); ValueError naming an unsupported layer."""
    arch = tuple(arch)
    if not arch:
        raise ValueError("alignment needs an arch of at least one layer")
    for i, layer in enumerate(arch):
        if type(layer) not in SUPPORTED:
            raise ValueError(f"layer {i} is {layer!r}; alignment supports "
                             f"{', '.join(c.__name__ for c in SUPPORTED)}")
    params = [i for i, layer in enumerate(arch) if isinstance(layer, PARAMETERISED)]
    return [_group(arch, layer, nxt) for layer, nxt in zip(params[:-1], params[1:])]


def shapes(arch):
    """{key: shape} of an arch's parameters, with torch's keys ("0.weight", "0.bias", ...)."""
    out = {}
    for i, layer in enumerate(arch):
        if isinstance(layer, S.Linear):
            out[f"{i}.weight"] = (layer.out_features, layer.in_features)
        elif isinstance(layer, S.Conv2d):
            k = layer.kernel_size
            out[f"{i}.weight"] = (layer.out_channels, layer.in_channels, k, k)
        if isinstance(layer, PARAMETERISED):
            out[f"{i}.bias"] = (_width(layer),)
    return out


def check_state(arch, state, name="state"):
    """Raise a one-line ValueError naming the key and layer unless state has exactly arch's keys and shapes."""
    arch = tuple(arch)
    expected = shapes(arch)
    extra = sorted(set(state) - set(expected))
    if extra:
        raise ValueError(f"{name} has key {extra[0]!r}, which the arch does not have")
    for key, shape in expected.items():
        where = _name(arch, int(key.split(".")[0]))
        if key not in state:
            raise ValueError(f"{name} lacks {key!r} of {where}")
        value = state[key]
        if not isinstance(value, np.ndarray) or value.shape != shape or value.dtype.kind != "f":
            got = f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
            raise ValueError(f"{name}[{key!r}] of {where}: expected a float array of shape {shape}, got {got}")


def _check_perms(arch, groups, perms):
    """perms as a list of intp arrays, one permutation of range(size) per group; else ValueError naming the layer."""
    perms = list(perms)
    if len(perms) != len(groups):
        raise ValueError(f"{len(perms)} permutations for the {len(groups)} hidden layers of the arch")
    out = []
    for g, p in zip(groups, perms):
        p = np.asarray(p)
        if p.shape != (g.size,) or p.dtype.kind not in "iu" or not np.array_equal(np.sort(p), np.arange(g.size)):
            raise ValueError(f"the permutation of {_name(arch, g.layer)} is not a permutation of its {g.size} units")
        out.append(p.astype(np.intp))
    return out


def _take_inputs(weight, p):
    """weight with its input units (axis 1, each a block of columns or a channel's kernel) reordered by p."""
    return weight.reshape(len(weight), len(p), -1)[:, p].reshape(weight.shape)


def _by_input(weight, n):
    """(n, rest): row j holds every weight reading input unit j of n."""
    return weight.reshape(len(weight), n, -1).transpose(1, 0, 2).reshape(n, -1)


def permute(state, arch, perms):
    """A new state dict: state's hidden units relabelled by perms (one per permutation_groups entry)."""
    arch = tuple(arch)
    groups = permutation_groups(arch)
    check_state(arch, state)
    perms = _check_perms(arch, groups, perms)
    out = {key: value.copy() for key, value in state.items()}
    for g, p in zip(groups, perms):
        out[f"{g.layer}.weight"] = out[f"{g.layer}.weight"][p]
        out[f"{g.layer}.bias"] = out[f"{g.layer}.bias"][p]
        out[f"{g.next}.weight"] = _take_inputs(out[f"{g.next}.weight"], p)
    return out


def random_permutation(arch, rng):
    """One random permutation per hidden layer of arch, drawn from the numpy Generator rng."""
    return [rng.permutation(g.size) for g in permutation_groups(arch)]


def _incoming(groups, i, a, b, p):
    """(n, n) float64: <A's weights into unit i, B's into unit j>, B's inputs reordered by p (None: as they are)."""
    g = groups[i]
    w = b[f"{g.layer}.weight"] if p is None else _take_inputs(b[f"{g.layer}.weight"], p)
    return a[f"{g.layer}.weight"].reshape(g.size, -1) @ w.reshape(g.size, -1).T


def _outgoing(groups, i, a, b, p):
    """(n, n) float64: <A's weights out of unit i, B's out of unit j>, B's outputs reordered by p (None: as they are)."""
    g = groups[i]
    w = b[f"{g.next}.weight"] if p is None else b[f"{g.next}.weight"][p]
    return _by_input(a[f"{g.next}.weight"], g.size) @ _by_input(w, g.size).T


def _fixed(groups, i, a, b):
    """The part of group i's similarity no other permutation changes: biases, and the incoming (first group)
    and outgoing (last group) weights."""
    g = groups[i]
    sim = np.outer(a[f"{g.layer}.bias"], b[f"{g.layer}.bias"])                   # (n, n)
    if i == 0:
        sim += _incoming(groups, i, a, b, None)
    if i == len(groups) - 1:
        sim += _outgoing(groups, i, a, b, None)
    return sim


def _similarity(groups, i, a, b, perms, fixed):
    """(n, n) float64: how well unit j of B fits unit i of A, B's neighbouring groups permuted by perms."""
    sim = fixed[i].copy()
    if i > 0:
        sim += _incoming(groups, i, a, b, perms[i - 1])
    if i < len(groups) - 1:
        sim += _outgoing(groups, i, a, b, perms[i + 1])
    return sim


def _pair(arch, state_a, state_b):
    """(arch tuple, groups) after checking both state dicts against arch."""
    arch = tuple(arch)
    groups = permutation_groups(arch)
    check_state(arch, state_a, "state_a")
    check_state(arch, state_b, "state_b")
    return arch, groups


def weight_matching(arch, state_a, state_b, max_sweeps=100, seed=0):
    """(B aligned to A, perms, sweeps run): coordinate descent over the hidden layers in a random order per sweep,
    each step one assignment on the similarity of incoming weights, biases and outgoing weights, until a sweep
    changes no permutation or max_sweeps have run."""
    if isinstance(max_sweeps, bool) or not isinstance(max_sweeps, int) or max_sweeps < 1:
        raise ValueError(f"max_sweeps must be a positive int, got {max_sweeps!r}")
    arch, groups = _pair(arch, state_a, state_b)
    a = {k: np.asarray(v, np.float64) for k, v in state_a.items()}
    b = {k: np.asarray(v, np.float64) for k, v in state_b.items()}
    perms = [np.arange(g.size) for g in groups]
    fixed = [_fixed(groups, i, a, b) for i in range(len(groups))]
    rng = np.random.default_rng(seed)
    for sweeps in range(1, max_sweeps + 1):
        changed = False
        for i in rng.permutation(len(groups)):
            p = linear_sum_assignment(_similarity(groups, i, a, b, perms, fixed), maximize=True)[1]
            if not np.array_equal(p, perms[i]):
                perms[i], changed = p, True
        if not changed:
            break
    return permute(state_b, arch, perms), perms, sweeps


def _net(arch, state):
    """A manual net in eval mode holding state, in state's dtype."""
    net = manual.build(arch, init="zeros", dtype=next(iter(state.values())).dtype).eval()
    net.load_state_dict(state)
    return net


def _hidden(net, x, groups):
    """Each group's hidden activations on x as float64 (units, samples); a conv's spatial positions are samples."""
    taps, out = {g.tap: None for g in groups}, []
    for i, layer in enumerate(net.layers[:max(taps) + 1]):
        x = layer.forward(x)
        if i in taps:
            taps[i] = x
    for g in groups:
        h = taps[g.tap]                                                       # (N, n) or (N, C, H, W)
        out.append(np.asarray(h.swapaxes(0, 1).reshape(g.size, -1), np.float64))   # (n, samples)
    return out


class _Moments:
    """Means and centred second moments of two nets' activations of one hidden layer, merged chunk by chunk
    (Chan et al.'s pairwise update, so that nearly constant units keep their small variance)."""

    def __init__(self, n):
        self.count, self.mean_a, self.mean_b = 0, np.zeros(n), np.zeros(n)
        self.var_a, self.var_b, self.cross = np.zeros(n), np.zeros(n), np.zeros((n, n))   # sums, not yet / count

    def add(self, ha, hb):
        """Add (n, samples) activations of A and B on the same samples."""
        m = ha.shape[1]
        mean_a, mean_b = ha.mean(1), hb.mean(1)
        ca, cb = ha - mean_a[:, None], hb - mean_b[:, None]                  # (n, m)
        da, db = mean_a - self.mean_a, mean_b - self.mean_b
        total = self.count + m
        weight = self.count * m / total
        self.var_a += np.einsum("ij,ij->i", ca, ca) + weight * da * da
        self.var_b += np.einsum("ij,ij->i", cb, cb) + weight * db * db
        self.cross += ca @ cb.T + weight * np.outer(da, db)                  # (n, n)
        self.mean_a += da * (m / total)
        self.mean_b += db * (m / total)
        self.count = total

    def correlation(self):
        """(n, n): Pearson correlation of unit i of A with unit j of B (0 where either is constant)."""
        return self.cross / (np.sqrt(np.outer(self.var_a, self.var_b)) + STD_GUARD)


def activation_matching(arch, state_a, state_b, x, chunk=CHUNK):
    """(B aligned to A, perms): one assignment per hidden layer on the correlation of the two nets' activations
    (after the activation function) over the examples x, run in chunks of `chunk` examples."""
    arch, groups = _pair(arch, state_a, state_b)
    if len(x) == 0:
        raise ValueError("activation matching needs at least one example in x")
    nets = _net(arch, state_a), _net(arch, state_b)
    moments = [_Moments(g.size) for g in groups]
    for lo in range(0, len(x), chunk) if groups else ():
        ha, hb = (_hidden(net, np.asarray(x[lo:lo + chunk], net.dtype), groups) for net in nets)
        for m, a, b in zip(moments, ha, hb):
            m.add(a, b)
    perms = [linear_sum_assignment(m.correlation(), maximize=True)[1] for m in moments]
    return permute(state_b, arch, perms), perms


def align(method, arch, state_a, state_b, x=None, seed=0):
    """(state_b aligned to state_a, its permutations, weight-matching sweeps or 0) by the named method: weight
    matching (x unused), or activation matching on the data subset x."""
    if method == "weight":
        return weight_matching(arch, state_a, state_b, seed=seed)
    if method == "activation":
        return (*activation_matching(arch, state_a, state_b, x), 0)
    raise ValueError(f"unknown matching {method!r}; valid: {', '.join(METHODS)}")
