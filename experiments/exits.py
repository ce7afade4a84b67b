"""The exit codes every command line shares, and the one-line report of a failure that ends a command."""
import errno
import importlib
import signal
import sys
import threading

OK = 0
FAILED = 1          # damaged or unfitting input: MNIST, a checkpoint, a run directory, a config file, a job
USAGE = 2           # a bad flag or value (argparse's own code)
DIVERGED = 3        # training stopped being finite (loss, gradient, parameter or evaluation)
OUT_OF_MEMORY = 4   # the shapes asked for do not fit in memory
DISK_FULL = 5       # a write failed with ENOSPC; nothing half-written is left
BUSY = 6            # another job holds the directory's lock
INTERRUPTED = 130   # Ctrl-C (128 + SIGINT); training wrote a checkpoint first
TERMINATED = 143    # SIGTERM (128 + SIGTERM); the same as Ctrl-C otherwise

CODES = {OK: "done", FAILED: "damaged or unfitting input (data, checkpoint, run directory, config file, a job)",
         USAGE: "a bad flag or value", DIVERGED: "training diverged", OUT_OF_MEMORY: "out of memory",
         DISK_FULL: "disk full", BUSY: "the directory is in use by another job", INTERRUPTED: "Ctrl-C (SIGINT)",
         TERMINATED: "SIGTERM"}


class Terminated(BaseException):
    """SIGTERM arrived (a BaseException like KeyboardInterrupt, so no `except Exception` swallows it)."""


def raise_terminated(signum, frame):
    """A SIGTERM handler: stop the command where it is, like Ctrl-C does."""
    raise Terminated()


def code_of(err):
    """The exit code of an exception that ended a command, and its one-line message."""
    if isinstance(err, KeyboardInterrupt):
        return INTERRUPTED, "interrupted (Ctrl-C)"
    if isinstance(err, Terminated):
        return TERMINATED, "terminated (SIGTERM)"
    if isinstance(err, MemoryError):
        return OUT_OF_MEMORY, f"out of memory: {err or 'an allocation failed'}; choose smaller shapes or batches"
    if hasattr(err, "exit_code"):
        return err.exit_code, str(err) or type(err).__name__
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return DISK_FULL, f"disk full: {err.filename or err.strerror} (nothing half-written is left)"
    if isinstance(err, OSError):
        return FAILED, f"{err.filename}: {err.strerror}" if err.filename else err.strerror or str(err)
    return FAILED, str(err) or type(err).__name__


def run(prog, body, *args):
    """body(*args)'s exit code; a known failure (an exception with an exit_code, OSError, MemoryError, Ctrl-C,
    SIGTERM) is reported as one line 'prog: error: ...' on stderr and turned into its code from the table above."""
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, raise_terminated) if main_thread else None
    try:
        return body(*args)
    except (KeyboardInterrupt, Terminated, MemoryError, OSError) as err:
        code, message = code_of(err)
    except Exception as err:
        if not hasattr(err, "exit_code"):
            raise
        code, message = code_of(err)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    return code


def launch(module, prog):
    """`python -m` entry: import module (Ctrl-C while it loads is one line and exit 130 too) and exit with its main()."""
    try:
        main = importlib.import_module(module).main
    except KeyboardInterrupt:
        print(f"{prog}: error: interrupted (Ctrl-C)", file=sys.stderr, flush=True)
        raise SystemExit(INTERRUPTED) from None
    raise SystemExit(main())
