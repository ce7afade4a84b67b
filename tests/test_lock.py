"""Directory locks, stale temporaries and atomic writes on a full disk: two jobs never share a folder, a crash
leaves nothing that blocks or confuses the next one."""
import errno
import os
import subprocess
import sys

import pytest

from experiments import exits, io, lock
from experiments.events import EventWriter


def test_a_second_lock_on_a_directory_is_refused_naming_it_and_the_holders_pid(tmp_path):
    with lock.DirectoryLock(str(tmp_path), "--run-dir"):
        with pytest.raises(lock.Locked, match=rf"--run-dir {tmp_path} is in use by another job \(PID {os.getpid()}\)"):
            lock.DirectoryLock(str(tmp_path), "--run-dir").acquire()
    assert not (tmp_path / lock.NAME).exists(), "released: the lock file is removed"
    lock.DirectoryLock(str(tmp_path)).acquire().release()   # free again


def test_a_lock_held_by_another_live_process_is_refused(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from experiments.lock import DirectoryLock; "
                               f"DirectoryLock({str(tmp_path)!r}).acquire(); print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(lock.Locked, match=f"PID {holder.pid}"):
            lock.DirectoryLock(str(tmp_path)).acquire()
    finally:
        holder.kill()
        holder.wait()
    taken = lock.DirectoryLock(str(tmp_path)).acquire()   # the killed holder's lock is stale: taken over
    assert taken.stale == holder.pid and lock.holder(taken.path) == os.getpid()
    taken.release()


def test_a_stale_lock_file_of_a_dead_pid_is_taken_over(tmp_path):
    (tmp_path / lock.NAME).write_text("999999999\n")   # left by a crash: nobody holds its flock
    with lock.DirectoryLock(str(tmp_path)) as held:
        assert held.stale == 999999999 and lock.holder(held.path) == os.getpid()


@pytest.mark.parametrize("make, words", [(lambda p: p.write_text(""), "it is a file"),
                                         (lambda p: None, "Not a directory")], ids=["a-file", "under-a-file"])
def test_a_directory_that_cannot_be_made_is_one_oserror_naming_it(tmp_path, make, words):
    (tmp_path / "f").write_text("")
    target = tmp_path / "f" if words.startswith("it") else tmp_path / "f" / "sub"
    with pytest.raises(OSError, match=f"--logdir {target} cannot be used: {words}"):
        lock.DirectoryLock(str(target), "--logdir").acquire()


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path):
    (tmp_path / "manual").mkdir()
    stale = tmp_path / "manual" / ".tmp-abc123checkpoint.npz"
    stale.write_bytes(b"half")
    (tmp_path / "keep.npz").write_bytes(b"x")
    assert io.remove_temporaries(str(tmp_path)) == [str(stale)]
    assert not stale.exists() and (tmp_path / "keep.npz").exists()


def full_disk(fd):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_leaves_neither_the_file_nor_a_temporary_and_names_the_path(tmp_path, monkeypatch):
    monkeypatch.setattr(io.os, "fsync", full_disk)
    path = tmp_path / "figure.png"
    with pytest.raises(OSError) as err:
        io.write_atomic(str(path), b"\x89PNG" * 1000)
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(path)
    assert os.listdir(tmp_path) == []
    assert exits.code_of(err.value) == (exits.DISK_FULL, f"disk full: {path} (nothing half-written is left)")


def test_the_landscape_png_goes_through_write_atomic(tmp_path, monkeypatch):
    import numpy as np

    from experiments.landscape import tb

    monkeypatch.setattr(io.os, "fsync", full_disk)
    grid = np.linspace(-1, 1, 3)
    surface = {"x": grid, "y": grid, "loss": np.ones((3, 3)), "accuracy": np.ones((3, 3))}
    png = tmp_path / "png" / "run_surface.png"

    with pytest.raises(OSError, match="No space left"):
        tb.add_surface(EventWriter(str(tmp_path / "tb")), "landscape/surface", surface, tb.contour_figure(surface, "t", "x", "y"), str(png))
    assert not png.exists() and os.listdir(png.parent) == []


@pytest.mark.parametrize("err, code", [(KeyboardInterrupt(), 130), (exits.Terminated(), 143), (MemoryError(), 4),
                                       (OSError(errno.ENOSPC, "full", "/x"), 5), (lock.Locked("busy"), 6),
                                       (FileNotFoundError(2, "No such file", "/x"), 1)])
def test_every_failure_maps_to_its_exit_code(err, code):
    assert exits.code_of(err)[0] == code


def test_run_reports_a_known_failure_on_one_line_and_lets_a_bug_through(capsys):
    def out_of_memory():
        raise MemoryError("Unable to allocate 6.3 TiB for an array")

    assert exits.run("prog", out_of_memory) == exits.OUT_OF_MEMORY
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("prog: error: out of memory: Unable to allocate 6.3 TiB")
    with pytest.raises(ZeroDivisionError):
        exits.run("prog", lambda: 1 / 0)
