"""`python -m experiments.train` (and `backprop-lab train`): flags -> Config -> the training loop."""
import dataclasses
import functools
import os
import shutil
import sys

from experiments import exits
from experiments.backends import Diverged
from experiments.config import Config
from experiments.devices import resolve as resolve_device
from experiments.events import serve_command
from experiments.flags import Parser, add_config_flags, config_values
from experiments.io import remove_temporaries
from experiments.lock import DirectoryLock
from experiments.train.loop import SNAPSHOTS, Interrupted, completed, train_and_evaluate

RESUMABLE = {"epochs", "data_dir", "device"}   # flags that may differ from the saved config when resuming
RUN_ENTRIES = ("config.json", "final.npz", SNAPSHOTS, "manual", "torch")   # what a run writes; --overwrite deletes these


class RunDirError(ValueError):
    """--run-dir's saved config cannot be read."""

    exit_code = exits.FAILED


def parser(prog="python -m experiments.train"):
    """The flags of the training command."""
    p = Parser(prog=prog,
               description="Train the manual NumPy network and/or its PyTorch twin on MNIST, logging to TensorBoard "
                           "(make tensorboard), checkpointing every epoch and on Ctrl-C.")
    p.add_argument("--config", metavar="FILE",
                   help="start from the Config in this JSON file (e.g. configs/lenet.json); flags given on the "
                        "command line override its values (default: none, the defaults below)")
    add_config_flags(p)
    p.add_argument("--run-dir", default=None,
                   help="where config.json, checkpoints, final.npz and TensorBoard logs go "
                        "(default: runs/<arch>-<optimizer>-<init>-seed<seed>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --run-dir from its latest checkpoint, with its saved config "
                        "(--epochs may raise the total only with --lr-schedule constant)")
    p.add_argument("--overwrite", action="store_true",
                   help="delete the run an existing --run-dir holds first (config.json, final.npz, snapshots.npz, "
                        "manual/, torch/; other files stay)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def resumed(p, args, given):
    """The Config saved in --run-dir, with the flags that may change on resume; one-line errors via p.error."""
    if not args.run_dir:
        p.error("--resume needs --run-dir")
    if args.config:
        p.error("--resume keeps the run's saved config: drop --config")
    path = os.path.join(args.run_dir, "config.json")
    if not os.path.exists(path):
        p.error(f"--resume: {path} does not exist: nothing to resume (start the run without --resume)")
    try:
        saved = Config.from_file(path)
    except OSError as err:
        raise RunDirError(f"{path}: {err.strerror}") from None
    except (ValueError, TypeError) as err:   # json.JSONDecodeError is a ValueError
        raise RunDirError(f"{path}: not a run's config ({err})") from None
    clash = sorted(k for k, v in given.items() if k not in RESUMABLE and v != getattr(saved, k))
    if clash:
        p.error(f"--resume keeps the saved config; these flags differ from it: {', '.join(clash)}")
    if given.get("epochs", saved.epochs) != saved.epochs and saved.lr_schedule == "cosine":
        p.error("--resume with another --epochs would change the cosine learning-rate schedule "
                "of the run so far; only a --lr-schedule constant run can be extended")
    try:
        return dataclasses.replace(saved, **{k: v for k, v in given.items() if k in RESUMABLE})
    except ValueError as err:                     # e.g. --device cuda for a saved --backend manual run
        p.error(str(err))


def resolve(p, args):
    """(Config, run_dir) from the parsed flags: --config's file (if any) overridden by the flags given, or the
    saved config on --resume. Reads only; one-line errors via p.error."""
    given = config_values(args)
    try:
        base = Config.from_file(args.config) if args.config and not args.resume else Config()
    except OSError as err:
        p.error(f"--config {args.config}: {err.strerror}")
    except (ValueError, TypeError) as err:   # json.JSONDecodeError is a ValueError
        p.error(f"--config {args.config}: {err}")
    if args.resume:
        return resumed(p, args, given), args.run_dir
    try:
        cfg = dataclasses.replace(base, **given)
    except (ValueError, TypeError) as err:
        p.error(str(err))
    run_dir = args.run_dir or os.path.join("runs", f"{cfg.arch}-{cfg.optimizer}-{cfg.init.replace(':', '')}-seed{cfg.seed}")
    return cfg, run_dir


def summary(results):
    """The final table: backend, test accuracy, test loss, seconds per epoch."""
    lines = [f"{'backend':8s} {'test acc':>9s} {'test loss':>10s} {'s/epoch':>8s}"]
    for name, r in results.items():
        lines.append(f"{name:8s} {100 * r.test_accuracy:8.2f}% {r.test_loss:10.4f} {r.seconds_per_epoch:8.2f}")
    return "\n".join(lines)


def clear_run(run_dir):
    """Delete what a run wrote in run_dir (RUN_ENTRIES), nothing else."""
    for name in RUN_ENTRIES:
        path = os.path.join(run_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)


def main(argv=None, prog="python -m experiments.train"):
    """Train; the exit codes are experiments.exits' (0 done, 1 bad input, 2 bad flags, 3 diverged, 4 out of
    memory, 5 disk full, 6 run directory in use, 130 Ctrl-C and 143 SIGTERM after a checkpoint)."""
    return exits.run(prog, command, argv, prog)


def command(argv, prog):
    """main's work: flags, the run directory locked and checked before the data loads, then training."""
    p = parser(prog)
    args = p.parse_args(argv)
    cfg, run_dir = resolve(p, args)
    if "torch" in cfg.backends:
        try:
            resolve_device(cfg.device)                # cuda without a GPU: one line, before any data loads
        except ValueError as err:
            p.error(str(err))
    with DirectoryLock(run_dir, "--run-dir"):
        remove_temporaries(run_dir)
        if args.resume and completed(cfg, run_dir):
            print(f"{run_dir} is complete: all {cfg.epochs} epochs trained; nothing to do (only a --lr-schedule "
                  f"constant run can be extended, with a larger --epochs)")
            return exits.OK
        if not args.resume and os.path.exists(os.path.join(run_dir, "config.json")):
            if not args.overwrite:
                p.error(f"{run_dir} holds a run already: --resume it, pass --overwrite, or choose another --run-dir")
            clear_run(run_dir)
        try:
            results = train_and_evaluate(cfg, run_dir, resume=args.resume, quiet=args.quiet,
                                         say=functools.partial(print, flush=True))
        except Diverged as err:
            print(f"{prog}: error: training diverged at {err}; the last good checkpoint is kept in {run_dir}",
                  file=sys.stderr)
            return exits.DIVERGED
        except Interrupted as err:
            print(f"{prog}: {err}; continue with --resume --run-dir {run_dir}", file=sys.stderr)
            return err.exit_code
    print(summary(results))
    print(f"run directory: {run_dir}\nTensorBoard: {serve_command(run_dir)}")
    return 0
