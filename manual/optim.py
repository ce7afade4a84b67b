"""SGD and Adam with torch.optim's update equations, in its operation order, on live NumPy arrays.

The notes' three gradient-descent variants are this one optimizer fed different gradients: batch
gradient descent steps on the gradient of all N examples, stochastic gradient descent on one example
(batch size 1), and mini-batch SGD on B examples. Nothing here knows the batch size.

torch fuses some multiply-adds (add_ with alpha, lerp_) into one FMA instruction; NumPy rounds the product
first, so float64 trajectories agree with torch.optim to about one rounding, not bit for bit.
"""
import numpy as np


def _nonnegative(name, value):
    """Raise ValueError unless value is a real number >= 0 (NaN included), in torch's words."""
    if not value >= 0.0:
        raise ValueError(f"Invalid {name}: {value}")


def _like(what, new, own):
    """Raise ValueError unless new is an ndarray of own's shape and dtype."""
    if not isinstance(new, np.ndarray) or new.shape != own.shape or new.dtype != own.dtype:
        got = f"{new.shape} {new.dtype}" if isinstance(new, np.ndarray) else type(new).__name__
        raise ValueError(f"{what} must be {own.shape} {own.dtype}, got {got}")


class _Optimizer:
    """The live parameters, their state arrays, the step count, and state_dict I/O."""

    _state_names = ()   # per-parameter state arrays, e.g. "momentum_buffer"

    def __init__(self, params):
        self.params = dict(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        for name, p in self.params.items():
            if not isinstance(p, np.ndarray) or p.dtype.kind != "f" or not p.flags.writeable:
                raise ValueError(f"parameter {name!r} must be a writeable float ndarray, got {type(p).__name__}")
        self.steps = 0
        self.state = {f"{name}.{s}": np.zeros_like(p) for name, p in self.params.items() for s in self._state_names}
        self._scratch = {name: (np.empty_like(p), np.empty_like(p)) for name, p in self.params.items()}

    def step(self, grads):
        """Update every parameter in place from grads ({name: array}, same keys, shapes and dtypes)."""
        if grads.keys() != self.params.keys():
            raise ValueError(f"grads keys {sorted(grads)} differ from params keys {sorted(self.params)}")
        for name, p in self.params.items():
            _like(f"grad {name!r}", grads[name], p)
        self.steps += 1
        for name, p in self.params.items():
            self._update(name, p, grads[name], *self._scratch[name])

    def _decayed(self, p, g, scratch):
        """g + weight_decay * p in scratch (torch's grad.add(param, alpha=weight_decay)), or g itself."""
        if self.weight_decay == 0:
            return g
        np.multiply(p, self.weight_decay, out=scratch)
        return np.add(g, scratch, out=scratch)

    def state_dict(self):
        """{"step": 0-d int64, "<param>.<state>": array copy}: ndarrays only, storable with np.savez."""
        return {"step": np.array(self.steps, dtype=np.int64), **{k: v.copy() for k, v in self.state.items()}}

    def load_state_dict(self, state):
        """Copy state in after checking every key, shape and dtype; on any problem raise and change nothing."""
        missing, extra = sorted({"step", *self.state} - set(state)), sorted(set(state) - {"step", *self.state})
        if missing or extra:
            raise ValueError(f"optimizer state_dict mismatch: missing {missing}, unexpected {extra}")
        step = np.asarray(state["step"])
        if step.ndim != 0 or step.dtype.kind not in "iu" or step < 0:
            raise ValueError(f"'step' must be an integer >= 0, got {state['step']!r}")
        for key, own in self.state.items():
            _like(repr(key), state[key], own)
        for key, own in self.state.items():
            np.copyto(own, state[key])
        self.steps = int(step)


class SGD(_Optimizer):
    """torch.optim.SGD: weight decay, then momentum (with dampening) or Nesterov, then p -= lr * g."""

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        _nonnegative("learning rate", lr)
        _nonnegative("momentum value", momentum)
        _nonnegative("weight_decay value", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        self._state_names = ("momentum_buffer",) if momentum != 0 else ()
        super().__init__(params)
        self.lr, self.momentum, self.dampening = float(lr), float(momentum), float(dampening)
        self.nesterov, self.weight_decay = bool(nesterov), float(weight_decay)

    def _update(self, name, p, g, s1, s2):
        """One parameter's step, following torch's _single_tensor_sgd line by line."""
        g = self._decayed(p, g, s1)
        if self.momentum != 0:
            buf = self.state[f"{name}.momentum_buffer"]
            if self.steps == 1:
                np.copyto(buf, g)                            # buf = grad.clone()
            else:
                buf *= self.momentum                         # buf.mul_(momentum).add_(grad, alpha=1 - dampening)
                buf += g if self.dampening == 0 else np.multiply(g, 1 - self.dampening, out=s2)
            if self.nesterov:
                np.multiply(buf, self.momentum, out=s2)      # grad = grad.add(buf, alpha=momentum)
                g = np.add(g, s2, out=s2)
            else:
                g = buf
        np.multiply(g, self.lr, out=s2)                      # param.add_(grad, alpha=-lr)
        p -= s2


class Adam(_Optimizer):
    """torch.optim.Adam (L2 weight decay added to the gradient, not AdamW; no amsgrad)."""

    _state_names = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        _nonnegative("learning rate", lr)
        _nonnegative("epsilon value", eps)
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair, got {betas!r}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
        _nonnegative("weight_decay value", weight_decay)
        super().__init__(params)
        self.lr, self.eps, self.weight_decay = float(lr), float(eps), float(weight_decay)
        self.betas = tuple(float(beta) for beta in betas)

    def _update(self, name, p, g, s1, s2):
        """One parameter's step, following torch's _single_tensor_adam line by line."""
        beta1, beta2 = self.betas
        m, v = self.state[f"{name}.exp_avg"], self.state[f"{name}.exp_avg_sq"]
        g = self._decayed(p, g, s1)
        weight = 1 - beta1                                   # exp_avg.lerp_(grad, 1 - beta1), torch's two branches
        np.subtract(g, m, out=s2)
        if abs(weight) < 0.5:
            s2 *= weight
            m += s2
        else:
            s2 *= 1 - weight
            np.subtract(g, s2, out=m)
        v *= beta2                                           # exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        np.multiply(g, 1 - beta2, out=s2)
        s2 *= g
        v += s2
        bias_correction1 = 1 - beta1 ** self.steps
        bias_correction2 = 1 - beta2 ** self.steps
        step_size = self.lr / bias_correction1
        np.sqrt(v, out=s1)                                   # denom = (exp_avg_sq.sqrt() / sqrt(bc2)).add_(eps)
        s1 /= bias_correction2 ** 0.5
        s1 += self.eps
        np.multiply(m, -step_size, out=s2)                   # param.addcdiv_(exp_avg, denom, value=-step_size)
        s2 /= s1
        p += s2
