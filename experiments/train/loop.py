"""One model-agnostic training loop for both backends: TensorBoard, checkpoints, resume, divergence stops."""
import os
import signal
import statistics
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

import manual
from experiments import checkpoint, data
from experiments.backends import Diverged, trainer
from experiments.config import arch_of, batch_size_of, flat_input, lr_at
from experiments.events import EventWriter
from experiments.exits import INTERRUPTED, TERMINATED
from experiments.io import write_text

SNAPSHOTS = "snapshots.npz"   # groups "0000" (start) ... (final), when snapshots are kept
GRAD_LOG_EVERY = 50  # steps between per-layer gradient-norm scalars (and at every epoch end)


STOP_SIGNALS = {signal.SIGINT: INTERRUPTED, signal.SIGTERM: TERMINATED}   # checkpoint, then stop: exit code
META = ("epoch", "batch", "step")   # a checkpoint's position: finished epochs, batches into the next, global step


class Interrupted(RuntimeError):
    """Ctrl-C or SIGTERM arrived; a checkpoint was written first. exit_code: 130 (SIGINT) or 143 (SIGTERM)."""

    def __init__(self, message, exit_code=INTERRUPTED):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Result:
    """What one backend's training produced."""
    backend: str
    init_state: dict
    final_state: dict = None
    snapshots: list = field(default_factory=list)   # state dicts along the way: init first, final last
    test_loss: float = float("nan")
    test_accuracy: float = float("nan")
    epoch_seconds: list = field(default_factory=list)
    train_losses: list = field(default_factory=list)

    @property
    def seconds_per_epoch(self):
        """The median training time of an epoch."""
        return statistics.median(self.epoch_seconds) if self.epoch_seconds else float("nan")


class Run:
    """One backend's position in training: epoch, batch within it, global step, and its TensorBoard writer."""

    def __init__(self, backend, run_dir, result):
        self.backend, self.result = backend, result
        self.dir = os.path.join(run_dir, backend.name)
        self.epoch = self.batch = self.step = 0
        self.writer = None

    @property
    def checkpoint_path(self):
        """<run-dir>/<backend>/checkpoint.npz."""
        return os.path.join(self.dir, "checkpoint.npz")

    def save(self):
        """Write the checkpoint: params, optimizer state, RNG state, epoch, batch within it, step."""
        b = self.backend
        meta = {"epoch": self.epoch, "batch": self.batch, "step": self.step}
        checkpoint.save(self.checkpoint_path, {"param": b.state_dict(), "optim": b.optimizer_state(),
                                               "rng": b.rng_state(), "meta": meta})

    def restore(self, epochs, per_epoch):
        """Load the checkpoint of a run of `epochs` epochs of per_epoch batches, refusing a missing, damaged or
        mismatched one (parameters, optimizer and RNG state, position) with its path."""
        if not os.path.exists(self.checkpoint_path):
            raise checkpoint.CheckpointError(f"{self.checkpoint_path}: no checkpoint to resume from")
        groups = checkpoint.load(self.checkpoint_path)
        try:  # a stateless optimizer (torch's plain SGD) saves no "optim" group
            position = read_meta(groups.get("meta", {}), epochs, per_epoch)
            self.backend.load(groups["param"], groups.get("optim", {}), groups["rng"])
        except (KeyError, ValueError, RuntimeError, StopIteration) as err:
            raise checkpoint.CheckpointError(f"{self.checkpoint_path}: does not fit this run ({err})") from None
        self.epoch, self.batch, self.step = position


def read_meta(meta, epochs, per_epoch):
    """(epoch, batch, step) of a checkpoint's meta group, each a whole-number scalar, the epoch at most `epochs`,
    the batch within an epoch of per_epoch batches and the step their sum; else ValueError naming the key."""
    missing = [k for k in META if k not in meta]
    if missing:
        raise ValueError(f"meta/{missing[0]} is missing")
    for key in META:
        value = meta[key]
        if value.shape != () or value.dtype.kind not in "iu" or value < 0:
            raise ValueError(f"meta/{key} must be a whole number >= 0, got {value.dtype} {value.shape} {value!r}")
    epoch, batch, step = (int(meta[k]) for k in META)
    if epoch > epochs:
        raise ValueError(f"meta/epoch {epoch} is past the run's {epochs} epochs")
    if batch > per_epoch or (epoch == epochs and batch):
        raise ValueError(f"meta/batch {batch} is past the epoch's {per_epoch} batches")
    if step != epoch * per_epoch + batch:
        raise ValueError(f"meta/step {step} is not epoch {epoch} x {per_epoch} batches + batch {batch}")
    return epoch, batch, step


def completed(cfg, run_dir):
    """Whether every backend's checkpoint in run_dir records all of cfg's epochs (a finished run); reads only,
    refusing a damaged or unfitting checkpoint (CheckpointError) as resuming would."""
    for name in cfg.backends:
        path = os.path.join(run_dir, name, "checkpoint.npz")
        if not os.path.exists(path):
            return False
        meta = checkpoint.load(path).get("meta", {})
        try:
            epoch, _, _ = read_meta(meta, cfg.epochs, batches_per_epoch(cfg))
        except ValueError as err:
            raise checkpoint.CheckpointError(f"{path}: does not fit this run ({err})") from None
        if epoch < cfg.epochs:
            return False
    return True


def batches_per_epoch(cfg):
    """How many steps an epoch of cfg takes."""
    n = cfg.limit_train or data.SIZES["train"]
    return data.num_batches(n, batch_size_of(cfg, n))


def write_config(cfg, run_dir):
    """<run-dir>/config.json, atomically."""
    os.makedirs(run_dir, exist_ok=True)
    write_text(os.path.join(run_dir, "config.json"), cfg.to_json() + "\n")


def log_epoch(run, test_loss, test_acc, seconds, lr):
    """The per-epoch scalars and histograms, at the global step."""
    w, step = run.writer, run.step
    w.add_scalar("test/loss", test_loss, step)
    w.add_scalar("test/accuracy", test_acc, step)
    w.add_scalar("time/epoch_seconds", seconds, step)
    w.add_scalar("train/lr", lr, step)
    for name, value in run.backend.state_dict().items():
        w.add_histogram(f"weights/{name}", value, step)
    for name, value in run.backend.grads().items():
        w.add_histogram(f"grads/{name}", value, step)


def run_epoch(run, cfg, xtr, ytr, stop, snapshot_at, quiet):
    """Train run's backend through the rest of its current epoch; returns the seconds it took."""
    bs = batch_size_of(cfg, len(xtr))
    total = data.num_batches(len(xtr), bs)
    bar = tqdm(total=len(xtr), initial=min(run.batch * bs, len(xtr)), unit="img", unit_scale=True, leave=False,
               desc=f"{run.backend.name} epoch {run.epoch + 1}/{cfg.epochs}", disable=quiet)
    run.backend.set_lr(lr_at(cfg, run.epoch))
    start = time.perf_counter()
    for xb, yb in data.batches(xtr, ytr, bs, cfg.seed, run.epoch, start=run.batch):
        try:
            loss = run.backend.step(xb, yb)
        except Diverged as err:
            bar.close()
            raise Diverged(f"{run.backend.name}: step {run.step + 1} (epoch {run.epoch + 1}): {err}") from None
        run.batch += 1
        run.step += 1
        per_example = loss / len(yb) if cfg.reduction == "sum" else loss
        run.result.train_losses.append(per_example)
        run.writer.add_scalar("train/loss", per_example, run.step)
        if run.step % GRAD_LOG_EVERY == 0 or run.batch == total:
            for name, g in run.backend.grads().items():
                run.writer.add_scalar(f"grad_norm/{name}", float(np.linalg.norm(g)), run.step)
        if run.batch in snapshot_at and run.batch < total:
            run.result.snapshots.append(run.backend.state_dict())
        bar.update(len(yb))
        bar.set_postfix(loss=f"{per_example:.4f}", refresh=False)
        if stop["now"]:
            bar.close()
            run.save()
            raise Interrupted(f"{stop['name']} at step {run.step}; checkpoint written to {run.checkpoint_path}",
                              STOP_SIGNALS[stop["now"]])
    bar.close()
    return time.perf_counter() - start


def snapshot_batches(cfg, n, per_epoch):
    """Batch counts within an epoch after which a snapshot is taken (the epoch's end is always one)."""
    total = data.num_batches(n, batch_size_of(cfg, n))
    return {round(total * (i + 1) / per_epoch) for i in range(per_epoch)} if per_epoch else set()


def train_and_evaluate(cfg, run_dir, resume=False, snapshots_per_epoch=0, quiet=False):
    """Train cfg's backend(s) into run_dir; {backend: Result}. Ctrl-C or SIGTERM (in the main thread) writes a
    checkpoint, then raises Interrupted."""
    stop = {"now": 0, "name": ""}

    def request(signum, frame):
        stop.update(now=signum, name=f"stopped by {signal.Signals(signum).name}")

    if threading.current_thread() is not threading.main_thread():   # only the main thread may set handlers
        return train(cfg, run_dir, resume, snapshots_per_epoch, quiet, stop)
    previous = {signum: signal.signal(signum, request) for signum in STOP_SIGNALS}
    try:
        return train(cfg, run_dir, resume, snapshots_per_epoch, quiet, stop)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def train(cfg, run_dir, resume, snapshots_per_epoch, quiet, stop):
    """The loop: every epoch, each backend in turn; stop["now"] (set by Ctrl-C or SIGTERM) is checked after every
    step. A fresh run writes its checkpoints before config.json, so a directory with config.json can be resumed;
    a resumed one changes nothing on disk until every checkpoint is accepted."""
    arch = arch_of(cfg)
    flatten = flat_input(arch)
    root = cfg.data_dir or None
    xtr, ytr = data.load("train", root, dtype=cfg.dtype, flatten=flatten, limit=cfg.limit_train or None)
    xte, yte = data.load("test", root, dtype=cfg.dtype, flatten=flatten)
    init_state = manual.build(arch, init=cfg.init, seed=cfg.seed, dtype=cfg.dtype).state_dict()
    runs = [Run(trainer(name)(arch, cfg, init_state), run_dir, Result(name, init_state))
            for name in cfg.backends]
    for run in runs:
        if resume:
            run.restore(cfg.epochs, batches_per_epoch(cfg))
        else:
            run.save()  # every backend can be resumed, even one interrupted before its first epoch ended
    write_config(cfg, run_dir)
    for run in runs:
        run.writer = EventWriter(run.dir, purge_step=run.step + 1 if resume else None)
        run.result.snapshots.append(run.backend.state_dict())  # the start of this process's part of the run
    snapshot_at = snapshot_batches(cfg, len(xtr), snapshots_per_epoch)
    try:
        for epoch in range(cfg.epochs):
            for run in runs:
                if run.epoch > epoch:
                    continue
                seconds = run_epoch(run, cfg, xtr, ytr, stop, snapshot_at, quiet)
                run.epoch, run.batch = epoch + 1, 0
                test_loss, test_acc = run.backend.evaluate(xte, yte)
                if not np.isfinite(test_loss):
                    raise Diverged(f"{run.backend.name}: step {run.step} (epoch {epoch + 1}): the evaluation's test "
                                   f"loss is {test_loss}")
                run.result.epoch_seconds.append(seconds)
                run.result.test_loss, run.result.test_accuracy = test_loss, test_acc
                if snapshots_per_epoch:
                    run.result.snapshots.append(run.backend.state_dict())
                log_epoch(run, test_loss, test_acc, seconds, lr_at(cfg, epoch))
                run.save()
            if len(runs) == 2:
                a, b = (r.backend.state_dict() for r in runs)
                diff = max(float(np.max(np.abs(a[k] - b[k]))) for k in a)
                runs[0].writer.add_scalar("agreement/max_param_diff", diff, runs[0].step)
    finally:
        for run in runs:
            run.writer.flush()
    return finish(cfg, run_dir, runs, snapshots_per_epoch)


def finish(cfg, run_dir, runs, snapshots_per_epoch):
    """final.npz (and snapshots.npz) per backend, the first backend's also at the top of run_dir; hparams."""
    hparams = {k: (",".join(map(str, v)) if isinstance(v, tuple) else str(v) if k == "batch_size" else v)
               for k, v in cfg.__dict__.items() if k not in ("backend", "data_dir")}
    for i, run in enumerate(runs):
        res = run.result
        res.final_state = run.backend.state_dict()
        if len(res.snapshots) == 1:
            res.snapshots.append(res.final_state)
        for directory in [run.dir] + ([run_dir] if i == 0 else []):
            checkpoint.save_arrays(os.path.join(directory, "final.npz"), res.final_state)
            if snapshots_per_epoch:
                checkpoint.save(os.path.join(directory, SNAPSHOTS),
                                {f"{k:04d}": state for k, state in enumerate(res.snapshots)})
        run.writer.add_hparams({**hparams, "backend": run.backend.name},
                               {"hparam/test_accuracy": res.test_accuracy, "hparam/test_loss": res.test_loss}, run.step)
        run.writer.close()
    return {run.backend.name: run.result for run in runs}
