"""How loaded the machine was around a benchmark: cores, load averages before and after, and a verdict."""
import contextlib
import datetime
import os
import subprocess


def cores():
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0))


def load_line(when):
    """'load average before: 0.12 0.30 0.41 (1, 5, 15 min) on 2 cores'."""
    one, five, fifteen = os.getloadavg()
    return f"load average {when}: {one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min) on {cores()} cores"


def verdict(loads):
    """'quiet' when every 1-minute load average seen stayed at or below the core count, else 'UNDER LOAD'."""
    return "quiet" if max(loads) <= cores() else "UNDER LOAD (load average above the core count)"


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
    """Print the date, commit, cores and load average before the block and after it, then whether it was quiet."""
    print(f"{name}: {datetime.date.today()} at commit {commit()}", flush=True)
    print(load_line("before"), flush=True)
    loads = [os.getloadavg()[0]]
    try:
        yield
    finally:
        loads.append(os.getloadavg()[0])
        print(load_line("after"))
        print(f"machine: {verdict(loads)}", flush=True)
