"""Training backends: the Trainer interface the training loop drives, and what both implementations share."""
import numpy as np

from experiments.exits import DIVERGED
from manual.spec import describe as describe_arch

TRAINERS = ("manual", "torch")   # the training backends; trainer(name) gives the class
EVAL_CHUNK = 1000                # examples per forward pass when evaluating
PARAM_LIMIT = 1e8                # a parameter beyond this in size has diverged too, before it overflows to inf


class Diverged(RuntimeError):
    """The loss, a gradient, a parameter or an evaluation stopped being finite (or a parameter grew past
    PARAM_LIMIT)."""

    exit_code = DIVERGED


def optimizer_args(cfg):
    """("sgd" | "adam", keyword arguments) for cfg's optimizer: one place for both backends."""
    if cfg.optimizer == "adam":
        return "adam", dict(lr=cfg.lr, weight_decay=cfg.weight_decay)
    momentum = 0.0 if cfg.optimizer == "sgd" else cfg.momentum
    return "sgd", dict(lr=cfg.lr, momentum=momentum, nesterov=cfg.optimizer == "nesterov",
                       weight_decay=cfg.weight_decay)


def first_nonfinite(grads):
    """The name of the first gradient (in layer order) holding a NaN or an infinity, or None."""
    return next((name for name, g in grads.items() if not np.isfinite(g).all()), None)


def check_finite(loss, grads, describe):
    """Raise Diverged naming the first non-finite gradient; cheap when all is well (one sum per tensor)."""
    if np.isfinite(loss) and all(np.isfinite(g.sum()) for g in grads.values()):
        return
    name = first_nonfinite(grads)
    where = f"first non-finite gradient: {name} of {describe(name)}" if name else "all gradients finite"
    raise Diverged(f"non-finite loss ({loss}); {where}")


def check_params(params, describe):
    """Raise Diverged naming the first parameter (in layer order) that holds a NaN, an infinity or an entry beyond
    PARAM_LIMIT in size; two reductions per tensor."""
    for name, p in params.items():
        top = max(abs(float(p.max())), abs(float(p.min())))                       # nan if p holds one
        if not top <= PARAM_LIMIT:
            raise Diverged(f"parameter {name} of {describe(name)} reached {top:.3g} after the update "
                           f"(limit {PARAM_LIMIT:g})")


def evaluate_in_chunks(forward, score, x, y, chunk=EVAL_CHUNK):
    """(mean loss, accuracy) over (x, y): forward(x chunk) -> logits, score(logits, y chunk) -> (summed loss, hits)."""
    total, correct = 0.0, 0
    for lo in range(0, len(x), chunk):
        loss, hits = score(forward(x[lo:lo + chunk]), y[lo:lo + chunk])
        total, correct = total + loss, correct + hits
    return total / len(x), correct / len(x)


class Trainer:
    """One backend's network and optimizer behind the interface the training loop drives; state as NumPy arrays."""

    name = ""   # "manual" or "torch": the run's subfolder and TensorBoard run

    def __init__(self, arch, cfg):
        self.arch, self.reduction = arch, cfg.reduction

    def describe(self, name):
        """The layer a parameter name like "2.weight" belongs to, e.g. "Linear(256, 128)"."""
        return describe_arch([self.arch[int(name.split(".")[0])]])

    def set_lr(self, lr):
        """Use learning rate lr for the next steps."""
        raise NotImplementedError

    def step(self, x, y):
        """One forward/backward/update on a batch; returns the loss (with cfg's reduction); Diverged if not finite."""
        raise NotImplementedError

    def grads(self):
        """{parameter name: gradient of the last step} as NumPy arrays."""
        raise NotImplementedError

    def evaluate(self, x, y):
        """(mean cross-entropy per example, accuracy) on (x, y), dropout off."""
        raise NotImplementedError

    def state_dict(self):
        """{parameter name: NumPy array}, a copy, in torch's names and layout."""
        raise NotImplementedError

    def optimizer_state(self):
        """{key: NumPy array} of the optimizer's state (momentum buffers, Adam moments, step counts)."""
        raise NotImplementedError

    def rng_state(self):
        """{key: NumPy array} of the random generators' states (dropout masks)."""
        raise NotImplementedError

    def load(self, params, optimizer, rng):
        """Restore parameters, optimizer state and RNG state saved by the three methods above."""
        raise NotImplementedError


def trainer(name):
    """The Trainer class of a training backend; torch is imported only for "torch"."""
    if name == "manual":
        from experiments.backends.manual import ManualTrainer
        return ManualTrainer
    if name == "torch":
        from experiments.backends.torch import TorchTrainer
        return TorchTrainer
    raise ValueError(f"unknown training backend {name!r}; valid: {', '.join(TRAINERS)}")
