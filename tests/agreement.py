"""The one manual-vs-torch agreement helper every agreement test uses (tinygrad's helper_test_op in spirit)."""
from experiments.agreement import pair, upstream
from tests.random_arch import inputs


def assert_rows(rows):
    """Fail naming every tensor that disagrees: shape, largest absolute difference and its index."""
    failed = [r.message() for r in rows if not r.ok]
    assert not failed, "manual and torch disagree:\n" + "\n".join(failed)


def check(arch, x_shape, dtype="float64", seed=0):
    """Same weights, a seeded input of x_shape, a random upstream gradient: output and every gradient agree."""
    net, mod = pair(arch, dtype, seed)
    x = inputs(x_shape, [seed, 2], dtype)
    rows = upstream(net, mod, x, seed)
    assert_rows(rows)
    return rows
