"""Layer specs (frozen dataclasses in torch's argument order) and named architectures."""
from dataclasses import dataclass, fields


def _positive(obj, *names):
    """Raise ValueError unless each named field of obj is a positive int."""
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{type(obj).__name__}.{name} must be a positive int, got {value!r}")


@dataclass(frozen=True)
class Linear:
    in_features: int
    out_features: int

    def __post_init__(self):
        _positive(self, "in_features", "out_features")


@dataclass(frozen=True)
class Conv2d:
    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int = 1
    padding: int = 0

    def __post_init__(self):
        _positive(self, "in_channels", "out_channels", "kernel_size", "stride")
        if not isinstance(self.padding, int) or self.padding < 0:
            raise ValueError(f"Conv2d.padding must be an int >= 0, got {self.padding!r}")


@dataclass(frozen=True)
class MaxPool2d:
    kernel_size: int
    stride: int | None = None

    def __post_init__(self):
        _positive(self, "kernel_size")
        if self.stride is not None:
            _positive(self, "stride")


@dataclass(frozen=True)
class Flatten:
    pass


@dataclass(frozen=True)
class ReLU:
    pass


@dataclass(frozen=True)
class Sigmoid:
    pass


@dataclass(frozen=True)
class Tanh:
    pass


@dataclass(frozen=True)
class Dropout:
    p: float = 0.5

    def __post_init__(self):
        if not 0.0 <= self.p < 1.0:
            raise ValueError(f"Dropout.p must be in [0, 1), got {self.p!r}")


LAYERS = (Linear, Conv2d, MaxPool2d, Flatten, ReLU, Sigmoid, Tanh, Dropout)
ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}


def _activation(name):
    """The activation spec called name."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def chain(depth=8, activation="sigmoid"):
    """The notes' single-chain net: depth blocks of Linear(1, 1) and an activation."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"chain depth must be a positive int, got {depth!r}")
    act = _activation(activation)
    return tuple(layer for _ in range(depth) for layer in (Linear(1, 1), act))


def mlp(hidden=(256, 128), activation="relu", inputs=784, classes=10):
    """A fully connected classifier: inputs -> hidden... -> classes."""
    widths = (inputs, *hidden, classes)
    act = _activation(activation)
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(Linear(a, b))
        if i < len(widths) - 2:
            layers.append(act)
    return tuple(layers)


def mlp_sigmoid():
    """The classic textbook net: 784-30-10 with sigmoid hidden units."""
    return mlp(hidden=(30,), activation="sigmoid")


def lenet():
    """LeNet-5 with ReLU and max pooling, for (N, 1, 28, 28) inputs."""
    return (
        Conv2d(1, 6, 5, padding=2), ReLU(), MaxPool2d(2),    # (N, 6, 14, 14)
        Conv2d(6, 16, 5), ReLU(), MaxPool2d(2),              # (N, 16, 5, 5)
        Flatten(),                                           # (N, 400)
        Linear(400, 120), ReLU(), Linear(120, 84), ReLU(), Linear(84, 10),
    )


ARCHITECTURES = {"chain": chain, "mlp": mlp, "mlp-sigmoid": mlp_sigmoid, "lenet": lenet}
_OPTIONS = {"chain": ("depth", "activation"), "mlp": ("hidden", "activation"),
            "mlp-sigmoid": (), "lenet": ()}


def get(name, **options):
    """The named architecture as a tuple of layer specs."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; valid: {', '.join(ARCHITECTURES)}")
    unknown = sorted(set(options) - set(_OPTIONS[name]))
    if unknown:
        valid = ", ".join(_OPTIONS[name]) or "none"
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for {name!r}; valid: {valid}")
    return ARCHITECTURES[name](**options)


def validate(layers):
    """Return layers as a tuple, raising ValueError if any item is not a layer spec."""
    layers = tuple(layers)
    if not layers:
        raise ValueError("a spec needs at least one layer")
    for i, layer in enumerate(layers):
        if not isinstance(layer, LAYERS):
            raise ValueError(f"layer {i} is {layer!r}, not one of {', '.join(c.__name__ for c in LAYERS)}")
    return layers


def describe(layers):
    """A one-line text form of a spec, e.g. 'Linear(784, 256) ReLU() ...'."""
    def one(layer):
        args = ", ".join(repr(getattr(layer, f.name)) for f in fields(layer))
        return f"{type(layer).__name__}({args})"
    return " ".join(one(layer) for layer in layers)
