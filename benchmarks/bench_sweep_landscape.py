"""`make run`'s landscape sweep (2 schemes x 2 seeds of mlp: training, surfaces, paths) with 2 local workers
against 1, and against the process pools the Dask runner replaced (an older checkout, given by --old-tree).

Each timing runs the landscape command in a fresh process, the methods alternated, medians printed. Curvature and
alignment are off (--curvature-samples 0 --align none): the old code had neither, so every method does the same
work. Needs MNIST ($BACKPROP_LAB_DATA or ./data).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from machine import measured

FLAGS = ["--arch", "mlp", "--inits", "kaiming_normal", "xavier_uniform", "--seeds", "0", "1", "--epochs", "2",
         "--limit-train", "10000", "--resolution", "21", "--eval-samples", "2000", "--overwrite"]   # make run's
NEW_ONLY = ["--curvature-samples", "0", "--align", "none"]


def timed(tree, workers, extra):
    """Seconds of one landscape command run from tree with --workers workers, output in a temporary folder."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "experiments.landscape", *FLAGS, *extra, "--workers", str(workers),
                   "--logdir", os.path.join(out, "landscape")]
        start = time.perf_counter()
        subprocess.run(command, cwd=tree, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": tree})
        return time.perf_counter() - start


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old-tree", help="a checkout of the commit before the runner (its process pools), e.g. made with "
                                      "`git worktree add /tmp/pools 5a0c1de`; omitted: not timed")
    p.add_argument("--repeats", type=int, default=1, help="timings per method; the median is reported (default 1)")
    args = p.parse_args()
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    methods = {"sweep, 1 worker": (here, 1, NEW_ONLY), "sweep, 2 workers": (here, 2, NEW_ONLY)}
    if args.old_tree:
        methods["old pools, 2 workers"] = (os.path.abspath(args.old_tree), 2, [])
    with measured("bench_sweep_landscape"):
        times = {name: [] for name in methods}
        for _ in range(args.repeats):
            for name, (tree, workers, extra) in methods.items():
                times[name].append(timed(tree, workers, extra))
                print(f"  ({name}: {times[name][-1]:.1f} s)", file=sys.stderr, flush=True)
        median = {name: statistics.median(t) for name, t in times.items()}
        print(f"make run's landscape sweep (mlp, 2 schemes x 2 seeds), median of {args.repeats}:")
        for name, seconds in median.items():
            print(f"  {name:22s} {seconds:7.1f} s")
        print(f"  speed-up, 2 workers against 1: {median['sweep, 1 worker'] / median['sweep, 2 workers']:.2f}x "
              f"(target >= 1.6x)")
        if args.old_tree:
            print(f"  sweep / old pools, 2 workers: {median['sweep, 2 workers'] / median['old pools, 2 workers']:.2f} "
                  f"(target <= 1.10)")


if __name__ == "__main__":
    main()
