"""Checkpoints as .npz (no pickle), written atomically, refused with their path when corrupt."""
import io
import zipfile

import numpy as np

from experiments.exits import FAILED
from experiments.io import write_atomic


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit the run."""

    exit_code = FAILED


def save_arrays(path, arrays):
    """Write {key: array} as .npz; a reader sees the old file or the whole new one."""
    buffer = io.BytesIO()
    np.savez(buffer, **{key: np.asarray(value) for key, value in arrays.items()})
    write_atomic(path, buffer.getvalue())


def load_arrays(path):
    """{key: array} from an .npz, never unpickling; any damage raises CheckpointError naming the file."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})") from None


def save(path, groups):
    """Write {group: {key: array}} as one .npz with keys "group/key"."""
    save_arrays(path, {f"{group}/{key}": value for group, values in groups.items() for key, value in values.items()})


def load(path):
    """{group: {key: array}} as written by save()."""
    groups = {}
    for name, value in load_arrays(path).items():
        group, _, key = name.partition("/")
        groups.setdefault(group, {})[key] = value
    return groups
