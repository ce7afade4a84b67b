"""Quadratic Bézier curves between two solutions (Garipov et al. 2018): θ(t) = (1−t)²θ_a + 2t(1−t)θ_c + t²θ_b,
the bend θ_c trained by SGD on the loss at a random t per step, on either backend.

The curve is evaluated with the landscape Evaluator as centre θ_a plus directions (θ_c − θ_a) and (θ_b − θ_a):
(1−t)²a + 2t(1−t)c + t²b = a + 2t(1−t)(c − a) + t²(b − a), since 1 − 2t(1−t) − t² = (1−t)².
"""
import numpy as np

import manual
from experiments import data
from experiments.landscape.align import check_state
from experiments.landscape.directions import difference
from manual.optim import SGD

BACKENDS = ("manual", "torch")
CURVE_SEED = 2018   # mixed with the run's seed for the t drawn at each step


def coefficients(t):
    """The weights of θ_a, θ_c and θ_b at t: (1−t)², 2t(1−t), t²."""
    return (1 - t) ** 2, 2 * t * (1 - t), t ** 2


def bezier_point(a, c, b, t):
    """θ(t) as a state dict: exactly a at t = 0 and exactly b at t = 1."""
    wa, wc, wb = coefficients(t)
    return {k: wa * a[k] + wc * c[k] + wb * b[k] for k in a}


def bend_gradient(net, a, c, b, t, x, y):
    """(mean cross-entropy of net on (x, y) at θ(t), its gradient wrt θ_c): the net's gradient at θ(t) times 2t(1−t)."""
    net.load_state_dict(bezier_point(a, c, b, t))
    loss, grads = net.loss_and_grads(x, y, reduction="mean")
    weight = coefficients(t)[1]                                       # dθ(t)/dθ_c
    return loss, {k: g * weight for k, g in grads.items()}


def _schedule(x, y, steps, batch_size, seed):
    """(t, xb, yb) for each step: t ~ U(0, 1), batches from data.batches, epoch after epoch (the same on both
    backends)."""
    ts = np.random.default_rng([seed, CURVE_SEED]).uniform(size=steps)
    step, epoch = 0, 0
    while step < steps:
        for xb, yb in data.batches(x, y, batch_size, seed, epoch):
            if step == steps:
                return
            yield float(ts[step]), xb, yb
            step += 1
        epoch += 1


def _train_manual(arch, a, b, c, schedule, lr, momentum):
    """Train c in place on the manual engine; the loss at each step."""
    net = manual.build(arch, init="zeros", dtype=c[next(iter(c))].dtype).eval()
    opt, losses = SGD(c, lr=lr, momentum=momentum), []
    for t, xb, yb in schedule:
        loss, grads = bend_gradient(net, a, c, b, t, xb, yb)
        opt.step(grads)
        losses.append(loss)
    return losses


def _train_torch(arch, a, b, c, schedule, lr, momentum):
    """Train c in place with torch autograd through θ(t) and torch.optim.SGD; the loss at each step."""
    import torch
    from torch.func import functional_call

    import torch_ref

    module = torch_ref.build(arch, dtype=c[next(iter(c))].dtype).eval()
    ta, tb = torch_ref.from_numpy(a), torch_ref.from_numpy(b)
    tc = {k: torch.from_numpy(v).requires_grad_() for k, v in c.items()}     # shares c's memory
    opt, losses = torch.optim.SGD(tc.values(), lr=lr, momentum=momentum), []
    for t, xb, yb in schedule:
        theta = bezier_point(ta, tc, tb, t)
        logits = functional_call(module, theta, (torch.from_numpy(xb),))
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(yb))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def _positive(name, value, integer):
    """Raise ValueError unless value is a positive int (integer) or a positive real number."""
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
        raise ValueError(f"{name} must be a positive {'int' if integer else 'number'}, got {value!r}")


def train_bezier(arch, state_a, state_b, x, y, steps, lr, batch_size, seed, backend="manual", momentum=0.9):
    """(θ_c, losses (steps,)): the bend started at (θ_a + θ_b)/2 and trained by SGD with momentum on the mean
    cross-entropy of a batch at θ(t), t ~ U(0, 1) drawn per step; its gradient is the net's at θ(t) times 2t(1−t).
    Dropout is off (eval mode), as in the landscape evaluation."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    _positive("steps", steps, integer=True)
    _positive("batch_size", batch_size, integer=True)
    _positive("lr", lr, integer=False)
    arch = tuple(arch)
    check_state(arch, state_a, "state_a")
    check_state(arch, state_b, "state_b")
    for k in state_a:
        if state_b[k].dtype != state_a[k].dtype:
            raise ValueError(f"state_b[{k!r}] is {state_b[k].dtype}, state_a's is {state_a[k].dtype}")
    c = {k: (state_a[k] + state_b[k]) / 2 for k in state_a}
    train = _train_manual if backend == "manual" else _train_torch
    losses = train(arch, state_a, state_b, c, _schedule(x, y, steps, batch_size, seed), lr, momentum)
    return c, np.array(losses)


def bezier_path(evaluate, a, c, b, ts, progress=None):
    """{"alpha": ts, "loss", "accuracy"} along the curve, by the landscape Evaluator (one batched call)."""
    ts = np.asarray(ts, np.float64)
    _, wc, wb = coefficients(ts)
    loss, acc = evaluate(a, [difference(c, a), difference(b, a)], np.stack([wc, wb], axis=1), progress)
    return {"alpha": ts, "loss": loss, "accuracy": acc}
