"""How loaded the machine was around a benchmark: cores, load averages before and after, and a verdict."""
import contextlib
import datetime
import os
import subprocess
import time


def cores():
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0))


def load_line(when):
    """'load average before: 0.12 0.30 0.41 (1, 5, 15 min) on 2 cores'."""
    one, five, fifteen = os.getloadavg()
    return f"load average {when}: {one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min) on {cores()} cores"


def verdict(others):
    """'quiet' when the load of other jobs stayed at or below the core count, else 'UNDER LOAD'."""
    return "quiet" if others <= cores() else "UNDER LOAD (other jobs' load average above the core count)"


def busy_seconds():
    """CPU seconds used so far by this process and the child processes it has waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def commit():
    """The checked-out commit (short hash, '+dirty' with uncommitted changes), or 'unknown' outside git."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        run = lambda *args: subprocess.run(["git", *args], cwd=here, capture_output=True, text=True, check=True).stdout
        return run("rev-parse", "--short", "HEAD").strip() + ("+dirty" if run("status", "--porcelain", "-uno") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@contextlib.contextmanager
def measured(name):
    """Print the date, commit, cores and load average before the block and after it, then whether it was quiet.

    The load average after includes the benchmark's own threads: the other jobs' load is taken as the larger of
    the load before and the load after less the cores the benchmark kept busy on average (its CPU time / wall).
    """
    print(f"{name}: {datetime.date.today()} at commit {commit()}", flush=True)
    print(load_line("before"), flush=True)
    before, start, used = os.getloadavg()[0], time.monotonic(), busy_seconds()
    try:
        yield
    finally:
        own = (busy_seconds() - used) / max(time.monotonic() - start, 1e-9)
        others = max(before, os.getloadavg()[0] - own)
        print(load_line("after") + f", of which this benchmark about {own:.1f} (its CPU time / wall time)")
        print(f"machine: {verdict(others)}; other jobs' load about {others:.2f}", flush=True)
