"""Atomic file writes: a reader sees the old file or the whole new one, never a part."""
import json
import os
import tempfile

TMP_PREFIX = ".tmp-"   # write_atomic's temporaries; one left behind by a killed writer is stale


def write_atomic(path, payload):
    """Write bytes to path through a temporary file in the same directory and os.replace; an OSError (a full
    disk, a read-only folder) leaves no temporary and names path."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=TMP_PREFIX, suffix=os.path.basename(path))
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; data files are for everyone to read
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(err, OSError):
            raise OSError(err.errno, err.strerror, path) from None
        raise


def remove_temporaries(directory):
    """Delete the stale write_atomic temporaries under directory (call it holding the directory's lock);
    returns their paths."""
    stale = [os.path.join(root, name) for root, _, names in os.walk(directory) for name in names
             if name.startswith(TMP_PREFIX)]
    for path in stale:
        os.remove(path)
    return stale


def write_text(path, text):
    """Write a str (UTF-8) atomically."""
    write_atomic(path, text.encode())


def write_json(path, value):
    """Write value as indented JSON (and a final newline) atomically."""
    write_text(path, json.dumps(value, indent=2) + "\n")
