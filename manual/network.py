"""Sequential: layers built from a spec, run in order, with torch's state-dict keys ("0.weight", ...)."""
import numpy as np

from manual import spec as S
from manual.conv import Conv2d, MaxPool2d
from manual.layers import Dropout, Flatten, Linear, ReLU, Sigmoid, Tanh
from manual.losses import cross_entropy, cross_entropy_hessian, mse, mse_hessian

LAYERS = {S.Linear: Linear, S.Conv2d: Conv2d, S.MaxPool2d: MaxPool2d, S.Flatten: Flatten,
          S.ReLU: ReLU, S.Sigmoid: Sigmoid, S.Tanh: Tanh, S.Dropout: Dropout}
LOSSES = {"cross_entropy": cross_entropy, "mse": mse}
LOSS_HESSIANS = {"cross_entropy": cross_entropy_hessian, "mse": mse_hessian}   # R{output} -> H_loss R{output}


def make_layers(layers, dtype, seed=0):
    """One layer object per spec, params zero; the Dropout at index i draws its masks from default_rng((seed, i))."""
    return [Dropout(s, dtype, seed=(seed, i)) if isinstance(s, S.Dropout) else LAYERS[type(s)](s, dtype)
            for i, s in enumerate(S.validate(layers))]


class Sequential:
    """Layers applied in order; backward runs them in reverse and leaves each layer's grads filled."""

    def __init__(self, layers, spec):
        self.layers, self.spec = list(layers), S.validate(spec)
        if len(self.layers) != len(self.spec):
            raise ValueError(f"{len(self.layers)} layers for a spec of {len(self.spec)}")
        self.dtype, self.out_shape = self.layers[0].dtype, None
        self.first = next((i for i, layer in enumerate(self.layers) if layer.params), len(self.layers))

    @property
    def params(self):
        """{"0.weight": live array, ...} in layer order (what an optimizer updates in place)."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params.items()}

    def grads(self):
        """{"0.weight": array, ...} from the last backward; the next backward overwrites these arrays."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.grads.items()}

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        self.out_shape = x.shape
        return x

    def backward(self, dout, input_grad=True):
        """dL/dx of the last forward's input (None when input_grad is False, which skips its cost); fills grads."""
        if not isinstance(dout, np.ndarray) or dout.shape != self.out_shape or dout.dtype != self.dtype:
            got = (dout.shape, dout.dtype) if isinstance(dout, np.ndarray) else type(dout).__name__
            raise ValueError(f"backward expects dout of shape {self.out_shape} and dtype {self.dtype} "
                             f"(the last forward's output), got {got}")
        stop = 0 if input_grad else self.first                     # layers before the first with params: skipped
        for i in range(len(self.layers) - 1, stop - 1, -1):
            dout = self.layers[i].backward(dout, input_grad=input_grad or i > stop)
        return dout if input_grad else None

    def loss_and_grads(self, x, y, reduction="sum", loss="cross_entropy"):
        """Forward, loss, backward: (float loss, grads())."""
        value, dout = _loss(loss)(self.forward(x), y, reduction=reduction)
        self.backward(dout, input_grad=False)
        return value, self.grads()

    def hvp(self, x, y, v, loss="cross_entropy", reduction="sum"):
        """H v, H the Hessian of the loss in the params, by Pearlmutter's R-operator: {"0.weight": copy, ...}."""
        return self.loss_grads_and_hvp(x, y, v, loss, reduction, grads=False)[2]

    def loss_grads_and_hvp(self, x, y, v, loss="cross_entropy", reduction="sum", grads=True):
        """(float loss, gradient copies or None, H v copies): forward, R-forward, then backward beside R-backward."""
        layer_v = self._direction(v)
        out = self.forward(x)
        value, dout = _loss(loss)(out, y, reduction=reduction)
        return (value, *self._r_passes(out, dout, layer_v, loss, reduction, grads))

    def hvp_function(self, x, y, loss="cross_entropy", reduction="sum"):
        """v -> H v at the current params on (x, y), the forward and loss run once here; valid until the next forward."""
        out = self.forward(x)
        dout = _loss(loss)(out, y, reduction=reduction)[1]
        return lambda v: self._r_passes(out, dout, self._direction(v), loss, reduction, grads=False)[1]

    def ggnvp(self, x, y, v, loss="cross_entropy", reduction="sum"):
        """Gauss-Newton product J^T H_loss J v (PSD for cross-entropy and MSE): the R-forward, then H_loss R{out}
        back through the ordinary backward (no σ'' and no δ V terms); copies, and grads() holds it too."""
        layer_v = self._direction(v)
        out = self.forward(x)
        _loss(loss)(out, y, reduction=reduction)                   # checks y as hvp does
        self.backward(self._r_forward(out, layer_v, loss, reduction), input_grad=False)
        return {k: g.copy() for k, g in self.grads().items()}

    def _r_passes(self, out, dout, layer_v, loss, reduction, grads):
        """After the forward that gave out and dL/dout: (gradient copies or None, H v copies) along layer_v."""
        rdout = self._r_forward(out, layer_v, loss, reduction)
        for i in range(len(self.layers) - 1, self.first - 1, -1):
            layer = self.layers[i]
            if grads and layer.params:
                layer.backward(dout, input_grad=False)             # this layer's dL/dθ only: one product more
            dout, rdout = layer.rbackward(dout, rdout, input_grad=i > self.first)
        hv = {f"{i}.{k}": g.copy() for i, layer in enumerate(self.layers) for k, g in layer.rgrads.items()}
        return ({k: g.copy() for k, g in self.grads().items()} if grads else None), hv

    def _r_forward(self, out, layer_v, loss, reduction):
        """R-forward along layer_v (one direction dict per layer) after the forward that gave out: H_loss R{out}."""
        rout = None                                                # R{input} = 0
        for layer, lv in zip(self.layers[self.first:], layer_v[self.first:]):
            rout = layer.rforward(rout, lv)
        return np.zeros_like(out) if rout is None else LOSS_HESSIANS[loss](out, rout, reduction)

    def _direction(self, v):
        """v split into one dict per layer, after checking it is keyed, shaped and typed like params, and finite."""
        if not isinstance(v, dict):
            raise ValueError(f"direction must be a dict keyed like grads(), got {type(v).__name__}")
        self._check_like(v, "direction")
        for key, d in v.items():
            if not np.isfinite(d).all():
                raise ValueError(f"direction {key} has non-finite values")
        return [{k: v[f"{i}.{k}"] for k in layer.params} for i, layer in enumerate(self.layers)]

    def _check_like(self, arrays, what):
        """Raise ValueError naming the key unless arrays has params' keys, shapes and dtypes."""
        params = self.params
        missing, extra = sorted(set(params) - set(arrays)), sorted(set(arrays) - set(params))
        if missing or extra:
            raise ValueError(f"{what} mismatch: missing {missing}, unexpected {extra}")
        for key, value in arrays.items():
            have = params[key]
            if not isinstance(value, np.ndarray) or value.shape != have.shape or value.dtype != have.dtype:
                got = (value.shape, value.dtype) if isinstance(value, np.ndarray) else type(value).__name__
                layer = self.layers[int(key.split(".")[0])].name
                raise ValueError(f"{what} {key} of {layer}: expected {have.shape} {have.dtype}, got {got}")

    def state_dict(self):
        """{"0.weight": copy, ...}: torch's keys and shapes."""
        return {k: v.copy() for k, v in self.params.items()}

    def load_state_dict(self, state):
        """Copy state into the live params; any missing, extra, mis-shaped or mis-typed entry raises and changes nothing."""
        self._check_like(state, "state dict")
        params = self.params
        for key, value in state.items():
            params[key][...] = value

    def train(self):
        """Training mode (Dropout active); returns self."""
        for layer in self.layers:
            layer.training = True
        return self

    def eval(self):
        """Evaluation mode (Dropout is the identity); returns self."""
        for layer in self.layers:
            layer.training = False
        return self


def _loss(name):
    """The loss function called name, or ValueError listing the valid names."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid: {', '.join(LOSSES)}")
    return LOSSES[name]
