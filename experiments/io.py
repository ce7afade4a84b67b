"""Atomic file writes: a reader sees the old file or the whole new one, never a part."""
import json
import os
import tempfile


def write_atomic(path, payload):
    """Write bytes to path through a temporary file in the same directory and os.replace."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; data files are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_text(path, text):
    """Write a str (UTF-8) atomically."""
    write_atomic(path, text.encode())


def write_json(path, value):
    """Write value as indented JSON (and a final newline) atomically."""
    write_text(path, json.dumps(value, indent=2) + "\n")
