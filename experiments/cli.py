"""Command lines: `python -m experiments.train`, and the `backprop-lab` console script."""
import argparse
import dataclasses
import json
import os
import shutil
import sys

from experiments.config import BACKENDS, DTYPES, MNIST_ARCHS, OPTIMIZERS, REDUCTIONS, SCHEDULES, Config
from manual import spec

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
}
RESUMABLE = {"epochs", "data_dir"}   # flags that may differ from the saved config when resuming


def parse_batch_size(text):
    """A positive int or "full" (argparse type)."""
    if text == "full":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer or 'full'") from None


def parse_hidden(text):
    """Comma-separated widths -> a tuple of ints (argparse type)."""
    try:
        return tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of widths") from None


TYPES = {"hidden": parse_hidden, "batch_size": parse_batch_size, "seed": int, "epochs": int, "limit_train": int,
         "lr": float, "momentum": float, "weight_decay": float}
CHOICES = {"backend": BACKENDS, "arch": MNIST_ARCHS, "optimizer": OPTIMIZERS, "dtype": DTYPES,
           "reduction": REDUCTIONS, "activation": tuple(spec.ACTIVATIONS), "lr_schedule": SCHEDULES}


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


def train_parser():
    """The flags of `python -m experiments.train`."""
    parser = argparse.ArgumentParser(
        prog="python -m experiments.train",
        description="Train the manual NumPy network and/or its PyTorch twin on MNIST, logging to TensorBoard "
                    "(make tensorboard), checkpointing every epoch and on Ctrl-C.")
    add_config_flags(parser)
    parser.add_argument("--run-dir", default=None,
                        help="where config.json, checkpoints, final.npz and TensorBoard logs go "
                             "(default: runs/<arch>-<optimizer>-<init>-seed<seed>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --run-dir from its latest checkpoint, with its saved config "
                             "(--epochs may raise the total only with --lr-schedule constant)")
    parser.add_argument("--overwrite", action="store_true", help="delete an existing --run-dir first")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def resolve(parser, args):
    """(Config, run_dir) from the parsed flags, the saved config on --resume; one-line errors via parser.error."""
    given = {k: v for k, v in vars(args).items() if k in {f.name for f in dataclasses.fields(Config)}}
    try:
        if args.resume:
            if not args.run_dir:
                parser.error("--resume needs --run-dir")
            path = os.path.join(args.run_dir, "config.json")
            if not os.path.exists(path):
                parser.error(f"--resume: {path} does not exist")
            saved = Config.from_file(path)
            clash = sorted(k for k, v in given.items() if k not in RESUMABLE and v != getattr(saved, k))
            if clash:
                parser.error(f"--resume keeps the saved config; these flags differ from it: {', '.join(clash)}")
            if given.get("epochs", saved.epochs) != saved.epochs and saved.lr_schedule == "cosine":
                parser.error("--resume with another --epochs would change the cosine learning-rate schedule "
                             "of the run so far; only a --lr-schedule constant run can be extended")
            return dataclasses.replace(saved, **{k: v for k, v in given.items() if k in RESUMABLE}), args.run_dir
        cfg = Config(**given)
    except (ValueError, TypeError, json.JSONDecodeError) as err:
        parser.error(str(err))
    run_dir = args.run_dir or os.path.join("runs", f"{cfg.arch}-{cfg.optimizer}-{cfg.init.replace(':', '')}-seed{cfg.seed}")
    if os.path.exists(os.path.join(run_dir, "config.json")):
        if not args.overwrite:
            parser.error(f"{run_dir} holds a run already: --resume it, pass --overwrite, or choose another --run-dir")
        shutil.rmtree(run_dir)
    return cfg, run_dir


def summary(results):
    """The final table: backend, test accuracy, test loss, seconds per epoch."""
    lines = [f"{'backend':8s} {'test acc':>9s} {'test loss':>10s} {'s/epoch':>8s}"]
    for name, r in results.items():
        lines.append(f"{name:8s} {100 * r.test_accuracy:8.2f}% {r.test_loss:10.4f} {r.seconds_per_epoch:8.2f}")
    return "\n".join(lines)


def train_main(argv=None):
    from experiments import checkpoint
    from experiments.backends import Diverged
    from experiments.data import DataError
    from experiments.train import Interrupted, train_and_evaluate

    parser = train_parser()
    args = parser.parse_args(argv)
    cfg, run_dir = resolve(parser, args)
    try:
        results = train_and_evaluate(cfg, run_dir, resume=args.resume, quiet=args.quiet)
    except Diverged as err:
        print(f"error: training diverged at {err}; the last good checkpoint is kept in {run_dir}", file=sys.stderr)
        return 3
    except Interrupted as err:
        print(f"{err}; continue with --resume --run-dir {run_dir}", file=sys.stderr)
        return 130
    except (checkpoint.CheckpointError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(summary(results))
    print(f"run directory: {run_dir}  (TensorBoard: make tensorboard, or tensorboard --logdir {run_dir})")
    return 0


def landscape_main(argv=None):
    """`backprop-lab landscape ...`, imported only when chosen (it pulls in matplotlib)."""
    from experiments.landscape.__main__ import main
    return main(argv)


def main(argv=None):
    """`backprop-lab train ...` and `backprop-lab landscape ...`."""
    argv = sys.argv[1:] if argv is None else argv
    commands = {"train": train_main, "landscape": landscape_main}
    if not argv or argv[0] not in commands:
        print(f"usage: backprop-lab {{{','.join(commands)}}} [--help]", file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])
