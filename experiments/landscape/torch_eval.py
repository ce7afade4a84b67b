"""The landscape's torch evaluation backend: torch_ref's nn.Sequential under no_grad, on the CPU or a GPU."""
import numpy as np
import torch

import torch_ref
from experiments.backends.torch import score
from experiments.landscape.evaluate import EvaluationBackend


class TorchEvaluation(EvaluationBackend):
    """torch_ref's nn.Sequential under no_grad on device, its parameters overwritten point by point."""

    def __init__(self, arch, dtype, device="cpu"):
        self.device = torch.device(device)
        self.module = torch_ref.build(arch, dtype=dtype).eval().requires_grad_(False).to(self.device)
        self.live, self.dtype = dict(self.module.named_parameters()), torch_ref.torch_dtype(dtype)
        self.parts = {}                                         # (start, stop) -> the slice module[start:stop]

    def asarray(self, a):
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def empty(self, shape):
        return torch.empty(shape, dtype=self.dtype, device=self.device)

    def combine(self, coeffs, stack, out):
        torch.mv(stack.T, coeffs, out=out)

    def axpy(self, alpha, x, y, out):
        torch.add(y, x, alpha=alpha, out=out)

    def load(self, flat, layout):
        for name, (start, stop, shape) in layout.items():
            self.live[name].copy_(flat[start:stop].view(shape))

    def forward(self, x, start=0, stop=None, scratch=False):
        """ReLU works in place on tensors this pass may overwrite: the input when scratch, and any module output
        that does not share the input's storage."""
        if (start, stop) not in self.parts:
            self.parts[start, stop] = self.module[start:stop]
        with torch.no_grad():
            for module in self.parts[start, stop]:
                if scratch and isinstance(module, torch.nn.ReLU):
                    x = torch.relu_(x)
                    continue
                out = module(x)
                scratch = scratch or out.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
                x = out
            return x

    def score(self, logits, y):
        return score(logits, y)
