"""Command-line flags generated from Config, the argparse types every command shares, one-line errors."""
import argparse
import dataclasses
import math

from experiments.config import (ACTIVATIONS, BACKEND_CHOICES, DTYPE_NAMES, MAX_SEED, MNIST_ARCHS, OPTIMIZERS,
                                REDUCTIONS, SCHEDULES, Config)
from experiments.devices import DEVICES

FLAG_HELP = {
    "backend": "which backend trains: the NumPy one, torch autograd, or both side by side on the same batches",
    "arch": "architecture: mlp (784-256-128-10 ReLU), mlp-sigmoid (784-30-10), lenet (LeNet-5)",
    "hidden": "custom hidden widths for mlp, comma-separated, e.g. 512,256",
    "activation": "custom activation for mlp: relu, sigmoid or tanh",
    "init": "weight initialisation: torch_default, xavier_uniform, xavier_normal, kaiming_uniform, "
            "kaiming_normal, lecun_normal, zeros, normal:STD, uniform:A",
    "seed": "seed of the initial weights, the batch order and dropout masks",
    "optimizer": "sgd, momentum (SGD with momentum), nesterov, or adam",
    "lr": "learning rate (the peak, with the cosine schedule)",
    "lr_schedule": "cosine: decay from --lr towards 0 over the epochs, set once per epoch; constant: --lr throughout",
    "momentum": "momentum for the momentum and nesterov optimizers",
    "weight_decay": "L2 weight decay added to the gradient (torch.optim's weight_decay)",
    "batch_size": "examples per step: 1 = stochastic GD, full = batch GD, anything else = mini-batch SGD",
    "epochs": "passes over the training set",
    "dtype": "float32 (fast) or float64 (for exact agreement)",
    "reduction": "sum = the notes' L(W) = -sum log Pr(y|x); mean = divided by the batch size",
    "limit_train": "train on the first N training images only (0 = all 60,000)",
    "data_dir": "where MNIST is or goes (default: $BACKPROP_LAB_DATA or ./data)",
    "device": "where the torch backend trains: cpu, cuda, or auto (cuda when torch sees a GPU, else cpu); the "
              "manual backend is NumPy on the CPU, so --backend manual refuses cuda and --backend both trains torch "
              "on the GPU and manual on the CPU",
}


class Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is reported on one line: 'prog: error: message (see --help)'."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def positive(kind):
    """An argparse type: a finite number of the given kind (int or float) > 0."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not 0 < value < math.inf:
            raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
        return value
    return parse


positive_int, positive_float = positive(int), positive(float)


def widths(text):
    """An argparse type: comma-separated positive widths, e.g. 512,256 -> (512, 256)."""
    try:
        return tuple(positive_int(part) for part in text.split(","))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of positive widths") from None


def seed(text):
    """An argparse type: an integer seed from 0 to MAX_SEED."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text!r} is not a seed: give an integer from 0 to {MAX_SEED}")
    return value


def batch_size(text):
    """An argparse type: a positive integer or "full"."""
    if text == "full":
        return text
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer or 'full'") from None


TYPES = {"hidden": widths, "batch_size": batch_size, "seed": seed, "epochs": int, "limit_train": int,
         "lr": float, "momentum": float, "weight_decay": float}
CHOICES = {"backend": BACKEND_CHOICES, "arch": MNIST_ARCHS, "optimizer": OPTIMIZERS, "dtype": DTYPE_NAMES,
           "reduction": REDUCTIONS, "activation": ACTIVATIONS, "lr_schedule": SCHEDULES,
           "device": DEVICES}


def add_config_flags(parser, skip=()):
    """One flag per Config field, its default shown, given-or-not kept visible (argparse.SUPPRESS)."""
    for f in dataclasses.fields(Config):
        if f.name in skip:
            continue
        default = ",".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
        shown = f" (default: {default})" if default not in ("", ()) else ""
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=argparse.SUPPRESS,
                            type=TYPES.get(f.name, str), choices=CHOICES.get(f.name),
                            help=FLAG_HELP[f.name] + shown)


def config_values(args):
    """The Config fields among parsed flags: {name: value} of those given."""
    names = {f.name for f in dataclasses.fields(Config)}
    return {k: v for k, v in vars(args).items() if k in names}
