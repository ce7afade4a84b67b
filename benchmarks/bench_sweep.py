"""The sweep runner (experiments/sweep.py) against itself serially and against the process pools it replaced.

Two measurements, side by side in one run:
- overhead: a local cluster of --workers processes started, given --tasks trivial tasks, and closed;
- a landscape-like sweep (the shape of `make run`: 2 schemes x 2 seeds): each job builds a seeded mlp and
  evaluates a resolution^2 filter-normalised surface around it with the manual Evaluator in float32 on the first
  --samples test images, which its worker loads from its own data directory. Timed serially (one process, no
  cluster), on a local cluster of --workers, and through the kind of pool the runner replaced (what
  experiments/landscape/parallel.py and the claims harness's Workers were: a spawned multiprocessing Pool of
  --workers processes, cores // workers BLAS/OpenMP threads each through the environment).
Every timing runs in a fresh process (process and cluster start included), the methods alternating; the parent
prints medians, ratios, whether every method produced the same bits, and the load average before and after.
The landscape CLI's own 2 x 2 sweep also trains each run first (the same in every method), left out here.
"""
import argparse
import functools
import hashlib
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time

import numpy as np

METHODS = ("serial", "sweep", "old-pool")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
SCHEMES = ("kaiming_normal", "xavier_uniform")


@functools.lru_cache(maxsize=2)
def test_images(root, samples):
    """The first `samples` test images, flattened, float32 (once per worker process)."""
    from experiments import data

    return data.load("test", root, dtype="float32", flatten=True, limit=samples)


def surface(job):
    """Loss (resolution^2,) on the random plane around a seeded mlp; reports each grid point done."""
    import manual
    from experiments.landscape import surfaces
    from experiments.landscape.evaluate import Evaluator
    from experiments.sweep import report
    from manual import spec

    arch = spec.get("mlp")
    x, y = test_images(job["data_dir"], job["samples"])
    centre = manual.build(arch, init=job["init"], seed=job["seed"], dtype="float32").state_dict()
    evaluate = Evaluator(arch, x, y, dtype="float32")
    return surfaces.random_surface(evaluate, centre, job["seed"], 1.0, job["resolution"], progress=report)["loss"]


def trivial(job):
    return job


def run(method, jobs, workers):
    """The sweep's results through one method."""
    if method in ("serial", "sweep"):
        from experiments.sweep import Sweep

        with Sweep(workers=1 if method == "serial" else workers) as sweep:
            return sweep.map(surface, jobs, progress=lambda amount: None)
    from experiments.sweep import cores

    for var in THREAD_VARS:   # read by each spawned worker's BLAS at import
        os.environ.setdefault(var, str(max(1, cores() // workers)))
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        return pool.map(surface, jobs, chunksize=1)


def child(method, args):
    """One timing in this process; prints {"seconds": s, "digest": sha256 of the results}."""
    from experiments import data

    jobs = [{"init": init, "seed": seed, "samples": args.samples, "resolution": args.resolution,
             "data_dir": data.default_root()} for init in SCHEMES for seed in (0, 1)]
    start = time.perf_counter()
    if method == "overhead":
        from experiments.sweep import Sweep

        with Sweep(workers=args.workers) as sweep:
            results = sweep.map(trivial, range(args.tasks))
        digest = hashlib.sha256(np.asarray(results).tobytes()).hexdigest()
    else:
        results = run(method, jobs, args.workers)
        digest = hashlib.sha256(b"".join(np.ascontiguousarray(r).tobytes() for r in results)).hexdigest()
    print(json.dumps({"seconds": time.perf_counter() - start, "digest": digest}))


def measure(method, args):
    out = subprocess.run([sys.executable, __file__, "--child", method, "--workers", str(args.workers),
                          "--samples", str(args.samples), "--resolution", str(args.resolution),
                          "--tasks", str(args.tasks)], check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    print(f"  ({method}: {result['seconds']:.1f} s)", file=sys.stderr, flush=True)
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=2, help="worker processes of every parallel method (default: 2)")
    p.add_argument("--samples", type=int, default=2000, help="test images per evaluation (default: 2000)")
    p.add_argument("--resolution", type=int, default=21, help="grid points per axis (default: 21)")
    p.add_argument("--tasks", type=int, default=100, help="trivial tasks of the overhead timing (default: 100)")
    p.add_argument("--repeats", type=int, default=3, help="timings per method; the median is reported (default: 3)")
    p.add_argument("--methods", nargs="+", default=["overhead", *METHODS], choices=("overhead", *METHODS),
                   help="what to time (default: all)")
    p.add_argument("--child", choices=("overhead", *METHODS), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args.child, args)
    from machine import measured

    runs = {m: [] for m in args.methods}
    with measured("bench_sweep"):
        for _ in range(args.repeats):
            for m in args.methods:
                runs[m].append(measure(m, args))
    median = {m: statistics.median(r["seconds"] for r in rs) for m, rs in runs.items()}
    print(f"median of {args.repeats}, each in a fresh process; sweep = 4 jobs (2 schemes x 2 seeds), each a "
          f"{args.resolution}x{args.resolution} mlp surface on {args.samples} test images, float32, manual")
    for m in args.methods:
        times = " ".join(f"{r['seconds']:.1f}" for r in runs[m])
        if m == "overhead":
            print(f"  {'cluster overhead':16s} {median[m]:7.2f} s   (runs: {times})   start + {args.tasks} trivial "
                  f"tasks + stop, {args.workers} workers")
            continue
        ratios = []
        if "serial" in median:
            ratios.append(f"serial / this = {median['serial'] / median[m]:.2f}x")
        if "sweep" in median and m != "sweep":
            ratios.append(f"this / sweep = {median[m] / median['sweep']:.2f}x")
        print(f"  {m:16s} {median[m]:7.2f} s   (runs: {times})   {'   '.join(ratios)}")
    digests = {m: {r["digest"] for r in rs} for m, rs in runs.items() if m != "overhead"}
    same = len(set().union(*digests.values())) == 1 if digests else True
    print(f"same results (sha256) from every sweep method and run: {'yes' if same else 'NO'}")


if __name__ == "__main__":   # run as bench_sweep, so that worker processes can import the jobs' functions
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_sweep

    bench_sweep.main()
