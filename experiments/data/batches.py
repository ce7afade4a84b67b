"""The seeded batch order every backend trains on."""
import numpy as np

from experiments.checks import is_count


def order(n, seed, epoch=0, shuffle=True):
    """The permutation of n examples for one epoch: a function of (seed, epoch) alone."""
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([seed, epoch]).permutation(n)


def batches(x, y, batch_size, seed, epoch=0, shuffle=True, start=0):
    """Yield (xb, yb) covering every example once per epoch; the last batch may be smaller.

    start skips the first `start` batches of the epoch, so a resumed run sees the rest of the same order.
    """
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} and {len(y)}")
    if not is_count(batch_size):
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    perm = order(len(x), seed, epoch, shuffle)
    for lo in range(start * batch_size, len(x), batch_size):
        idx = perm[lo:lo + batch_size]
        yield x[idx], y[idx]


def num_batches(n, batch_size):
    """How many batches one epoch of n examples has."""
    return -(-n // batch_size)
