"""The claims' --out folder: locked while a claim runs, and its tb/ and runs/ deleted only with --overwrite and
only when a claims command made them."""
import os

import pytest

from experiments import exits
from experiments.claims import harness
from experiments.lock import NAME as LOCK_FILE
from experiments.lock import DirectoryLock, Locked


@pytest.fixture
def release():
    yield
    while harness.HELD:
        harness.HELD.pop().release()


def earlier_run(out, mark=True):
    """OUT as an earlier claims run (or, mark=False, someone else) left it."""
    for sub in ("tb", "runs"):
        (out / sub).mkdir(parents=True)
        (out / sub / "kept.txt").write_text("x")
    if mark:
        (out / harness.MARK).write_text("")


def test_out_dot_keeps_runs_and_tb_without_overwrite(tmp_path, release):
    earlier_run(tmp_path)
    with pytest.raises(FileExistsError, match=f"{tmp_path / 'tb'} holds an earlier run: pass --overwrite"):
        harness.clear(str(tmp_path))
    assert (tmp_path / "runs" / "kept.txt").exists() and (tmp_path / "tb" / "kept.txt").exists()


def test_overwrite_replaces_only_what_a_claims_run_made(tmp_path, release):
    earlier_run(tmp_path)
    (tmp_path / "mine").mkdir()
    harness.clear(str(tmp_path), overwrite=True)
    assert sorted(os.listdir(tmp_path)) == sorted([harness.MARK, LOCK_FILE, "mine"])


def test_overwrite_never_deletes_folders_no_claims_run_made(tmp_path, release):
    earlier_run(tmp_path, mark=False)
    with pytest.raises(FileExistsError, match="was not made by a claims command"):
        harness.clear(str(tmp_path), overwrite=True)
    assert (tmp_path / "runs" / "kept.txt").exists()


def test_a_busy_out_is_refused_and_the_lock_released_when_the_claim_ends(tmp_path, capsys):
    with DirectoryLock(str(tmp_path), "--out"):
        with pytest.raises(Locked, match=f"--out {tmp_path} is in use by another job"):
            harness.clear(str(tmp_path))

    @harness.command
    def main(argv):
        harness.clear(str(tmp_path))
        assert (tmp_path / LOCK_FILE).exists()
        return exits.OK

    assert main([]) == exits.OK and not (tmp_path / LOCK_FILE).exists() and not harness.HELD


def test_a_claims_failure_is_one_line_with_its_exit_code(tmp_path, capsys):
    @harness.command
    def main(argv):
        raise OSError(28, "No space left on device", str(tmp_path / "x.png"))

    assert main([]) == exits.DISK_FULL
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(f"error: disk full: {tmp_path / 'x.png'} (nothing half-written is left)")
