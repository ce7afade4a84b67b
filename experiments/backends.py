"""The two backends behind one small interface: step, evaluate, state in and out as NumPy arrays."""
import json

import numpy as np

import manual
from manual import losses
from manual import optim as manual_optim


class Diverged(RuntimeError):
    """The loss or a gradient stopped being finite."""


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


class Backend:
    """What both backends share: the spec, the loss reduction, and naming a parameter's layer."""

    def __init__(self, layers, cfg):
        self.layers, self.reduction = layers, cfg.reduction

    def describe(self, name):
        """The layer a parameter name like "2.weight" belongs to, e.g. "Linear(256, 128)"."""
        return manual.spec.describe([self.layers[int(name.split(".")[0])]])


class Manual(Backend):
    """The hand-written NumPy network and optimizer."""

    name = "manual"

    def __init__(self, layers, cfg, init_state):
        super().__init__(layers, cfg)
        self.net = manual.build(layers, init="zeros", seed=cfg.seed, dtype=cfg.dtype)
        self.net.load_state_dict(init_state)
        kind, kwargs = optimizer_args(cfg)
        self.opt = manual_optim.Adam(self.net.params, **kwargs) if kind == "adam" else \
            manual_optim.SGD(self.net.params, **kwargs)

    def set_lr(self, lr):
        """The learning rate for the next steps."""
        self.opt.lr = lr

    def step(self, x, y):
        """One forward/backward/update on a batch; returns the loss (with cfg's reduction)."""
        loss, grads = self.net.loss_and_grads(x, y, reduction=self.reduction)
        check_finite(loss, grads, self.describe)
        self.opt.step(grads)
        return loss

    def grads(self):
        return self.net.grads()

    def evaluate(self, x, y, batch_size=1000):
        """(mean cross-entropy per example, accuracy) with dropout off."""
        self.net.eval()
        total, correct = 0.0, 0
        for lo in range(0, len(x), batch_size):
            logits = self.net.forward(x[lo:lo + batch_size])
            total += losses.cross_entropy(logits, y[lo:lo + batch_size], reduction="sum")[0]
            correct += int((logits.argmax(1) == y[lo:lo + batch_size]).sum())
        self.net.train()
        return total / len(x), correct / len(x)

    def state_dict(self):
        return self.net.state_dict()

    def optimizer_state(self):
        return self.opt.state_dict()

    def rng_state(self):
        """The dropout generators' states, as one JSON string."""
        states = [layer.rng.bit_generator.state for layer in self.net.layers if hasattr(layer, "rng")]
        return {"manual": np.array(json.dumps(states))}

    def load(self, params, optimizer, rng):
        self.net.load_state_dict(params)
        self.opt.load_state_dict(optimizer)
        states = iter(json.loads(str(rng["manual"])))
        for layer in self.net.layers:
            if hasattr(layer, "rng"):
                layer.rng.bit_generator.state = next(states)


class Torch(Backend):
    """torch.nn from the same spec, trained by autograd and torch.optim."""

    name = "torch"

    def __init__(self, layers, cfg, init_state):
        import torch
        import torch_ref

        super().__init__(layers, cfg)
        self.torch = torch
        torch.manual_seed(cfg.seed)
        self.module = torch_ref.build(layers, dtype=cfg.dtype)
        self.module.load_state_dict(torch_ref.from_numpy(init_state))
        self.params = dict(self.module.named_parameters())
        kind, kwargs = optimizer_args(cfg)
        cls = torch.optim.Adam if kind == "adam" else torch.optim.SGD
        self.opt = cls(self.params.values(), **kwargs)

    def set_lr(self, lr):
        """The learning rate for the next steps."""
        for group in self.opt.param_groups:
            group["lr"] = lr

    def step(self, x, y):
        """One forward/backward/update on a batch; returns the loss (with cfg's reduction)."""
        self.opt.zero_grad(set_to_none=True)
        loss = self.torch.nn.functional.cross_entropy(
            self.module(self.torch.from_numpy(x)), self.torch.from_numpy(y), reduction=self.reduction)
        loss.backward()
        value = loss.item()
        check_finite(value, self.grads(), self.describe)
        self.opt.step()
        return value

    def grads(self):
        return {name: p.grad.numpy() for name, p in self.params.items()}

    def evaluate(self, x, y, batch_size=1000):
        """(mean cross-entropy per example, accuracy) with dropout off."""
        F, total, correct = self.torch.nn.functional, 0.0, 0
        self.module.eval()
        with self.torch.no_grad():
            for lo in range(0, len(x), batch_size):
                logits = self.module(self.torch.from_numpy(x[lo:lo + batch_size]))
                labels = self.torch.from_numpy(y[lo:lo + batch_size])
                total += F.cross_entropy(logits, labels, reduction="sum").item()
                correct += int((logits.argmax(1) == labels).sum())
        self.module.train()
        return total / len(x), correct / len(x)

    def state_dict(self):
        import torch_ref

        return torch_ref.to_numpy(self.params)

    def optimizer_state(self):
        """{"<param>.<state>": array} from torch.optim's per-parameter state."""
        return {f"{name}.{key}": value.numpy().copy() for name, p in self.params.items()
                for key, value in self.opt.state.get(p, {}).items()}

    def rng_state(self):
        return {"torch": self.torch.get_rng_state().numpy()}

    def load(self, params, optimizer, rng):
        with self.torch.no_grad():
            for name, p in self.params.items():
                p.copy_(self.torch.from_numpy(params[name]))
        for name, p in self.params.items():
            keys = [k for k in optimizer if k.rpartition(".")[0] == name]
            self.opt.state[p] = {k.rpartition(".")[2]: self.torch.from_numpy(optimizer[k].copy()) for k in keys}
        self.torch.set_rng_state(self.torch.from_numpy(rng["torch"].copy()))


BACKENDS = {"manual": Manual, "torch": Torch}
