"""The hand-written NumPy network and optimizer as a training backend."""
import json

import numpy as np

import manual
from experiments.backends import Trainer, check_finite, check_params, evaluate_in_chunks, optimizer_args
from manual import optim
from manual.losses import cross_entropy


def score(logits, y):
    """(summed cross-entropy, number correct) of NumPy logits (N, C) against labels (N,)."""
    return cross_entropy(logits, y, reduction="sum")[0], int(np.count_nonzero(logits.argmax(1) == y))


class ManualTrainer(Trainer):
    """manual.build's Sequential trained by manual.optim."""

    name = "manual"

    def __init__(self, arch, cfg, init_state):
        super().__init__(arch, cfg)
        self.net = manual.build(arch, init="zeros", seed=cfg.seed, dtype=cfg.dtype)
        self.net.load_state_dict(init_state)
        kind, kwargs = optimizer_args(cfg)
        self.opt = optim.Adam(self.net.params, **kwargs) if kind == "adam" else optim.SGD(self.net.params, **kwargs)

    def set_lr(self, lr):
        self.opt.lr = lr

    def step(self, x, y):
        loss, grads = self.net.loss_and_grads(x, y, reduction=self.reduction)
        check_finite(loss, grads, self.describe)
        self.opt.step(grads)
        check_params(self.net.params, self.describe)
        return loss

    def grads(self):
        return self.net.grads()

    def evaluate(self, x, y):
        self.net.eval()
        result = evaluate_in_chunks(self.net.forward, score, x, y)
        self.net.train()
        return result

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
