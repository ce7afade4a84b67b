"""Hypothesis: random MLPs and small conv nets, random batches; every gradient agrees with torch in float64."""
from hypothesis import given
from hypothesis import strategies as st

from manual import spec
from tests.agreement import check

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


@given(mlps(), st.integers(0, 2**32 - 1))
def test_random_mlps_agree(net, seed):
    arch, x_shape = net
    check(arch, x_shape, "float64", seed)


@given(conv_nets(), st.integers(0, 2**32 - 1))
def test_random_conv_nets_agree(net, seed):
    arch, x_shape = net
    check(arch, x_shape, "float64", seed)
