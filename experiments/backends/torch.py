"""torch.nn from the same arch, trained by autograd and torch.optim, as a training backend."""
import torch
import torch.nn.functional as F

import torch_ref
from experiments.backends import Trainer, check_finite, evaluate_in_chunks, optimizer_args


def score(logits, y):
    """(summed cross-entropy, number correct) of torch logits (N, C) against torch labels (N,)."""
    return F.cross_entropy(logits, y, reduction="sum").item(), int((logits.argmax(1) == y).sum())


class TorchTrainer(Trainer):
    """torch_ref's nn.Sequential trained by autograd and torch.optim."""

    name = "torch"

    def __init__(self, arch, cfg, init_state):
        super().__init__(arch, cfg)
        torch.manual_seed(cfg.seed)
        self.module = torch_ref.build(arch, dtype=cfg.dtype)
        self.module.load_state_dict(torch_ref.from_numpy(init_state))
        self.params = dict(self.module.named_parameters())
        kind, kwargs = optimizer_args(cfg)
        cls = torch.optim.Adam if kind == "adam" else torch.optim.SGD
        self.opt = cls(self.params.values(), **kwargs)

    def set_lr(self, lr):
        for group in self.opt.param_groups:
            group["lr"] = lr

    def step(self, x, y):
        self.opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.module(torch.from_numpy(x)), torch.from_numpy(y), reduction=self.reduction)
        loss.backward()
        value = loss.item()
        check_finite(value, self.grads(), self.describe)
        self.opt.step()
        return value

    def grads(self):
        return {name: p.grad.numpy() for name, p in self.params.items()}

    def evaluate(self, x, y):
        self.module.eval()
        with torch.no_grad():
            result = evaluate_in_chunks(lambda xc: self.module(torch.from_numpy(xc)),
                                        lambda logits, yc: score(logits, torch.from_numpy(yc)), x, y)
        self.module.train()
        return result

    def state_dict(self):
        return torch_ref.to_numpy(self.params)

    def optimizer_state(self):
        """{"<param>.<state>": array} from torch.optim's per-parameter state."""
        return {f"{name}.{key}": value.numpy().copy() for name, p in self.params.items()
                for key, value in self.opt.state.get(p, {}).items()}

    def rng_state(self):
        return {"torch": torch.get_rng_state().numpy()}

    def load(self, params, optimizer, rng):
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(torch.from_numpy(params[name]))
        for name, p in self.params.items():
            keys = [k for k in optimizer if k.rpartition(".")[0] == name]
            self.opt.state[p] = {k.rpartition(".")[2]: torch.from_numpy(optimizer[k].copy()) for k in keys}
        torch.set_rng_state(torch.from_numpy(rng["torch"].copy()))
