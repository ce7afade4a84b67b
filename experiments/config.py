"""The training configuration: every default in one place, every value checked, JSON in and out."""
import dataclasses
import json
import math
from dataclasses import dataclass

import manual
from experiments.checks import is_count
from experiments.devices import DEVICES, numpy_only
from experiments.data import SIZES
from manual import spec
from manual.init import parse as parse_init
from manual.losses import REDUCTIONS

BACKEND_CHOICES = ("manual", "torch", "both")   # the training backends of experiments.backends, or both
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
SCHEDULES = ("cosine", "constant")
MNIST_ARCHS = ("mlp", "mlp-sigmoid", "lenet")   # "chain" takes scalar inputs, not images
DTYPE_NAMES = tuple(dt.name for dt in manual.DTYPES)
ACTIVATIONS = tuple(spec.ACTIVATIONS)
MAX_SEED = 2**64 - 1   # the largest seed both engines take (torch.manual_seed's limit)


@dataclass(frozen=True)
class Config:
    backend: str = "both"            # manual | torch | both
    arch: str = "mlp"                # mlp | mlp-sigmoid | lenet
    hidden: tuple = ()               # custom hidden widths for mlp, e.g. (512, 256); () keeps the named net
    activation: str = ""             # custom activation for mlp (relu | sigmoid | tanh); "" keeps the named net
    init: str = "torch_default"      # a manual.init scheme, optionally "name:param"
    seed: int = 0                    # initial weights, batch order and dropout masks all follow from it
    optimizer: str = "momentum"      # sgd | momentum | nesterov | adam
    lr: float = 0.05
    lr_schedule: str = "cosine"      # cosine: lr * (1 + cos(pi * epoch / epochs)) / 2, set at each epoch; constant
    momentum: float = 0.9            # for momentum and nesterov
    weight_decay: float = 0.0
    batch_size: object = 128         # 1 = SGD, "full" = batch gradient descent, else mini-batch SGD
    epochs: int = 10
    dtype: str = "float32"
    reduction: str = "mean"          # sum = the notes' L(W) = -sum log Pr(y|x); mean divides by the batch size
    limit_train: int = 0             # train on the first N images; 0 = all 60,000
    data_dir: str = ""               # "" = $BACKPROP_LAB_DATA or ./data
    device: str = "cpu"              # cpu | cuda | auto: where the torch backend trains; manual stays on the CPU

    def __post_init__(self):
        def fail(field, allowed):
            raise ValueError(f"--{field.replace('_', '-')} {getattr(self, field)!r} is invalid; {allowed}")

        for field, choices in (("backend", BACKEND_CHOICES), ("optimizer", OPTIMIZERS), ("arch", MNIST_ARCHS),
                               ("dtype", DTYPE_NAMES), ("reduction", REDUCTIONS),
                               ("lr_schedule", SCHEDULES), ("device", DEVICES)):
            if getattr(self, field) not in choices:
                fail(field, f"choose from {', '.join(choices)}")
        numpy_only(self.backend, self.device)
        if (self.hidden or self.activation) and self.arch != "mlp":
            raise ValueError("--hidden and --activation customise --arch mlp only")
        if not all(is_count(w) for w in self.hidden):
            fail("hidden", "give positive integer widths, e.g. 512,256")
        if self.activation and self.activation not in ACTIVATIONS:
            fail("activation", f"choose from {', '.join(ACTIVATIONS)}")
        parse_init(self.init)
        if not is_count(self.seed, 0) or self.seed > MAX_SEED:
            fail("seed", f"give an integer from 0 to {MAX_SEED}")
        if not is_count(self.limit_train, 0) or self.limit_train > SIZES["train"]:
            fail("limit_train", f"give an integer from 0 (all) to {SIZES['train']}, the training set's size")
        if not is_count(self.epochs):
            fail("epochs", "give an integer >= 1")
        if self.batch_size != "full" and not is_count(self.batch_size):
            fail("batch_size", "give a positive integer or 'full'")
        for field in ("lr", "momentum", "weight_decay"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
                fail(field, "give a finite number >= 0")
        if self.lr == 0:
            fail("lr", "give a learning rate > 0")
        if self.momentum >= 1:
            fail("momentum", "give a momentum in [0, 1): at 1 or above the steps never decay")

    @property
    def backends(self):
        """The backends this run trains, in order."""
        return ("manual", "torch") if self.backend == "both" else (self.backend,)

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, values):
        """A Config from a dict (e.g. a run's config.json); unknown keys are rejected."""
        if not isinstance(values, dict):
            raise ValueError(f"a config is a JSON object of Config fields, got {type(values).__name__}")
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(unknown)}")
        if "hidden" in values:
            values = {**values, "hidden": tuple(values["hidden"])}
        return cls(**values)

    @classmethod
    def from_file(cls, path):
        """The Config saved in a JSON file (a run's config.json, or a preset in configs/)."""
        with open(path) as f:
            return cls.from_dict(json.load(f))


def lr_at(cfg, epoch):
    """The learning rate for a (0-based) epoch: a function of the epoch alone, so a resumed run matches."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    return cfg.lr * (1 + math.cos(math.pi * epoch / cfg.epochs)) / 2


def flat_input(arch):
    """Whether an arch takes images as (N, 784) rows (True) or as (N, 1, 28, 28) for a first Conv2d."""
    return not isinstance(arch[0], spec.Conv2d)


def arch_of(cfg):
    """The arch (tuple of layer specs) cfg trains: the named architecture, or mlp with custom widths/activation."""
    options = {k: v for k, v in (("hidden", cfg.hidden), ("activation", cfg.activation)) if v}
    return spec.get(cfg.arch, **options)


def batch_size_of(cfg, n):
    """The number of examples per step for n training examples ("full" = all of them)."""
    return n if cfg.batch_size == "full" else min(cfg.batch_size, n)
