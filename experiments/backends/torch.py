"""torch.nn from the same arch, trained by autograd and torch.optim, as a training backend."""
import numpy as np
import torch
import torch.nn.functional as F

import torch_ref
from experiments.backends import Trainer, check_finite, check_params, evaluate_in_chunks, optimizer_args
from experiments.devices import resolve


def score(logits, y):
    """(summed cross-entropy, number correct) of torch logits (N, C) against torch labels (N,)."""
    return F.cross_entropy(logits, y, reduction="sum").item(), int((logits.argmax(1) == y).sum())


def numpy(t):
    """A tensor's values as a NumPy array on the CPU (shares memory with a CPU tensor, copies a GPU one)."""
    return t.detach().cpu().numpy()


class TorchTrainer(Trainer):
    """torch_ref's nn.Sequential trained by autograd and torch.optim on cfg's device; batches come and state goes
    as NumPy arrays on the CPU."""

    name = "torch"

    def __init__(self, arch, cfg, init_state):
        super().__init__(arch, cfg)
        torch.manual_seed(cfg.seed)                     # seeds the CPU and every CUDA generator
        self.device = torch.device(resolve(cfg.device))
        self.module = torch_ref.build(arch, dtype=cfg.dtype).to(self.device)
        self.module.load_state_dict(torch_ref.from_numpy(init_state))
        self.params = dict(self.module.named_parameters())
        kind, kwargs = optimizer_args(cfg)
        cls = torch.optim.Adam if kind == "adam" else torch.optim.SGD
        self.opt = cls(self.params.values(), **kwargs)
        for p in self.params.values():   # the state torch.optim's first step would make, so every checkpoint has it
            self.opt.state[p] = self.fresh_state(p)

    def fresh_state(self, p):
        """torch.optim's per-parameter state before the first step: Adam's step and moments, SGD's momentum buffer
        (zeros: buffer * momentum + grad is then exactly the grad its first step would clone)."""
        if isinstance(self.opt, torch.optim.Adam):
            return {"step": torch.tensor(0.0), "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
        return {"momentum_buffer": torch.zeros_like(p)} if self.opt.defaults["momentum"] else {}

    def set_lr(self, lr):
        for group in self.opt.param_groups:
            group["lr"] = lr

    def step(self, x, y):
        self.opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.module(self.tensor(x)), self.tensor(y), reduction=self.reduction)
        loss.backward()
        value = loss.item()
        check_finite(value, self.grads(), self.describe)
        self.opt.step()
        check_params({name: numpy(p) for name, p in self.params.items()}, self.describe)
        return value

    def tensor(self, a):
        """A NumPy batch as a tensor on the device (the array itself on the CPU)."""
        return torch.from_numpy(a).to(self.device)

    def grads(self):
        return {name: numpy(p.grad) for name, p in self.params.items()}

    def evaluate(self, x, y):
        self.module.eval()
        with torch.no_grad():
            result = evaluate_in_chunks(lambda xc: self.module(self.tensor(xc)),
                                        lambda logits, yc: score(logits, self.tensor(yc)), x, y)
        self.module.train()
        return result

    def state_dict(self):
        return torch_ref.to_numpy(self.params)

    def optimizer_state(self):
        """{"<param>.<state>": array} from torch.optim's per-parameter state."""
        return {f"{name}.{key}": numpy(value).copy() for name, p in self.params.items()
                for key, value in self.opt.state.get(p, {}).items()}

    def rng_state(self):
        """The CPU generator's state, and on a GPU the CUDA generator's (dropout masks are drawn there)."""
        return {"torch": torch.get_rng_state().numpy(), **self.cuda_rng()}

    def cuda_rng(self):
        """{"cuda": the CUDA generator's state} on a GPU, {} on the CPU."""
        return {"cuda": torch.cuda.get_rng_state(self.device).numpy()} if self.device.type == "cuda" else {}

    def load(self, params, optimizer, rng):
        """Every key, shape and dtype checked first (ValueError naming the first problem), then copied in."""
        expected = {"param": {name: numpy(p) for name, p in self.params.items()},
                    "optim": {f"{name}.{key}": numpy(value) for name, p in self.params.items()
                              for key, value in self.fresh_state(p).items()},
                    "rng": {"torch": torch.get_rng_state().numpy(), **self.cuda_rng()}}
        if "cuda" not in rng:                           # a checkpoint from a CPU run: the CUDA generator stays seeded
            expected["rng"].pop("cuda", None)
        elif "cuda" not in expected["rng"]:             # a GPU run resumed on the CPU: its CUDA state has no use
            rng = {k: v for k, v in rng.items() if k != "cuda"}
        for group, given in (("param", params), ("optim", optimizer), ("rng", rng)):
            like(group, given, expected[group])
        for key, step in optimizer.items():
            if key.endswith(".step") and not (np.isfinite(step) and step >= 0 and step == int(step)):
                raise ValueError(f"optim/{key} must be a whole number >= 0, got {step}")
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(torch.from_numpy(params[name]))
        for name, p in self.params.items():
            self.opt.state[p] = {key: torch.from_numpy(optimizer[f"{name}.{key}"].copy()).to(fresh.device)
                                 for key, fresh in self.fresh_state(p).items()}
        torch.set_rng_state(torch.from_numpy(rng["torch"].copy()))
        if "cuda" in rng:
            torch.cuda.set_rng_state(torch.from_numpy(rng["cuda"].copy()), self.device)


def like(group, given, expected):
    """ValueError unless given ({key: array}) has expected's keys, and each entry its shape and dtype."""
    missing, extra = sorted(set(expected) - set(given)), sorted(set(given) - set(expected))
    if missing or extra:
        raise ValueError(f"{group}: missing {missing}, unexpected {extra}")
    for key, want in expected.items():
        got = np.asarray(given[key])
        if got.shape != want.shape or got.dtype != want.dtype:
            raise ValueError(f"{group}/{key} is {got.dtype} {got.shape}, expected {want.dtype} {want.shape}")
