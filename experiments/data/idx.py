"""The IDX file format MNIST ships in: read strictly, write atomically."""
import numpy as np

from experiments.io import write_atomic

UBYTE = 0x08  # the only element type MNIST uses


def write(path, array):
    """Write a uint8 array as an IDX file: temp file in the same directory, then os.replace."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8 or not 1 <= array.ndim <= 3:
        raise ValueError(f"IDX writer takes uint8 arrays of 1-3 dims, got {array.dtype} {array.shape}")
    header = bytes([0, 0, UBYTE, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    write_atomic(path, header + array.tobytes())


def read(path):
    """Read an IDX file of unsigned bytes, refusing a malformed or truncated one with its path."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0:2] != b"\0\0" or data[2] != UBYTE or not 1 <= data[3] <= 3:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes (header {data[:4].hex() or 'empty'})")
    ndim = data[3]
    offset = 4 + 4 * ndim
    if len(data) < offset:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = offset + int(np.prod(shape))
    if len(data) != expected:
        raise ValueError(f"{path}: IDX shape {shape} needs {expected} bytes, the file has {len(data)} (truncated or padded)")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)
