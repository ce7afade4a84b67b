"""Random archs, layers and inputs the tests share: hypothesis strategies, seeded layers, batches and directions."""
import numpy as np
from hypothesis import strategies as st

from manual import spec
from manual.network import make_layers

ACTIVATIONS = st.sampled_from(sorted(spec.ACTIVATIONS)).map(lambda name: spec.ACTIVATIONS[name]())
BATCH = st.integers(1, 32)


@st.composite
def mlps(draw):
    """(arch, x shape): 1-5 Linear layers of widths 1-64, each but maybe the last followed by any activation."""
    widths = draw(st.lists(st.integers(1, 64), min_size=2, max_size=6))
    arch = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        arch.append(spec.Linear(a, b))
        if i < len(widths) - 2 or draw(st.booleans()):
            arch.append(draw(ACTIVATIONS))
    return tuple(arch), (draw(BATCH), widths[0])


def conv_size(size, kernel, stride, padding=0):
    """Spatial output size of a convolution or pooling window, as torch floors it."""
    return (size + 2 * padding - kernel) // stride + 1


@st.composite
def conv_nets(draw):
    """(arch, x shape): Conv2d with random kernel/stride/padding, an activation, maybe MaxPool2d, Flatten, Linear."""
    channels, size = draw(st.integers(1, 3)), draw(st.integers(3, 12))
    padding = draw(st.integers(0, 2))
    kernel = draw(st.integers(1, min(5, size + 2 * padding)))
    stride = draw(st.integers(1, 3))
    conv = spec.Conv2d(channels, draw(st.integers(1, 4)), kernel, stride=stride, padding=padding)
    side = conv_size(size, kernel, stride, padding)
    arch = [conv, draw(ACTIVATIONS)]
    if side >= 2 and draw(st.booleans()):
        pool = spec.MaxPool2d(draw(st.integers(2, min(3, side))), stride=draw(st.none() | st.integers(1, 2)))
        side = conv_size(side, pool.kernel_size, pool.stride or pool.kernel_size)
        arch.append(pool)
    arch += [spec.Flatten(), spec.Linear(conv.out_channels * side * side, draw(st.integers(1, 10)))]
    return tuple(arch), (draw(BATCH), channels, size, size)


def random_layer(layer_spec, rng, dtype=np.float64):
    """The manual layer of a layer spec, every parameter standard-normal from rng."""
    layer = make_layers([layer_spec], dtype)[0]
    for p in layer.params.values():
        p[...] = rng.standard_normal(p.shape)
    return layer


def random_like(arrays, rng):
    """Standard-normal arrays from rng, keyed, shaped and typed like arrays (gradients, directions)."""
    return {k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in arrays.items()}


def input_shape(arch, n, size=28):
    """The input shape an arch takes: (n, in_features), or (n, C, size, size) when it starts with a Conv2d."""
    first = arch[0]
    return (n, first.in_channels, size, size) if isinstance(first, spec.Conv2d) else (n, first.in_features)


def inputs(shape, seed, dtype="float64"):
    """A standard-normal array of shape from default_rng(seed)."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def batch(shape, classes, seed, targets=False):
    """Standard-normal inputs of shape from default_rng(seed), then a label below classes for each (with targets:
    a standard-normal row of classes values, for mse)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    return x, rng.standard_normal((shape[0], classes)) if targets else rng.integers(0, classes, shape[0])
