"""Every named architecture, both reductions and dtypes: manual gradients against torch autograd through the loss."""
import pytest

from experiments.agreement import compare
from manual import spec
from tests.agreement import assert_rows

ARCHS = {"chain-1": ("chain", dict(depth=1)), "chain-5": ("chain", dict(depth=5)),
         "chain-20": ("chain", dict(depth=20)), "mlp": ("mlp", {}), "mlp-sigmoid": ("mlp-sigmoid", {}),
         "lenet": ("lenet", {})}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("arch", ARCHS)
def test_architecture_agrees(arch, reduction, dtype):
    name, options = ARCHS[arch]
    arch = spec.get(name, **options)
    rows = compare(arch, dtype, batch_size=8, reduction=reduction, seed=1)
    assert_rows(rows)
    params = sum(2 for layer in arch if isinstance(layer, (spec.Linear, spec.Conv2d)))
    assert [r.name for r in rows[:3]] == ["output", "loss", "input.grad"] and len(rows) == 3 + params
