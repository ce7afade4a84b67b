"""An exclusive lock on a directory for the life of a job: a second job into it is refused on one line, and the
lock of a job that died (its PID no longer running) is taken over, since the kernel drops a dead process's flock."""
import errno
import fcntl
import os

from experiments.exits import BUSY

NAME = ".lock"   # the lock file inside the directory: the holder's PID, removed on release


class Locked(RuntimeError):
    """Another live process holds the directory's lock."""

    exit_code = BUSY


def holder(path):
    """The PID written in a lock file, or None when it holds none."""
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class DirectoryLock:
    """fcntl.flock on DIR/.lock, held from acquire() (or `with`) to release(); label names the directory's flag."""

    def __init__(self, directory, label="the directory"):
        self.directory, self.label = directory, label
        self.path = os.path.join(directory, NAME)
        self.fd, self.stale = None, None   # stale: the PID of a dead job whose lock was taken over

    def acquire(self):
        """Make the directory, take its lock (Locked if a live job has it; OSError naming it if it cannot be
        made or written), and write this process's PID into the lock file."""
        try:
            if os.path.lexists(self.directory) and not os.path.isdir(self.directory):
                raise NotADirectoryError(errno.ENOTDIR, "it is a file, not a directory")
            os.makedirs(self.directory, exist_ok=True)
            while self.fd is None:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    raise Locked(f"{self.label} {self.directory} is in use by another job (PID {holder(self.path)}); "
                                 f"wait for it to end or choose another directory") from None
                if self._same_file(fd):
                    self.fd = fd
                else:   # the holder released (and removed) the file between our open and flock: open it again
                    os.close(fd)
            self.stale = holder(self.path)
            os.ftruncate(self.fd, 0)
            os.write(self.fd, f"{os.getpid()}\n".encode())
        except OSError as err:
            self.release()
            raise OSError(err.errno, f"{self.label} {self.directory} cannot be used: {err.strerror}") from None
        return self

    def _same_file(self, fd):
        """Whether fd is still the file at self.path (not one removed by its previous holder)."""
        try:
            return os.path.samestat(os.fstat(fd), os.stat(self.path))
        except FileNotFoundError:
            return False

    def release(self):
        """Remove the lock file and drop the lock; nothing when not held."""
        if self.fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
