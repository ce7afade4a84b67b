"""A 41x41 filter-normalised loss surface, float32: ours (first-layer trick, both backends) vs loss-landscapes.

The `loss-landscapes` package (the `bench` extra: `make bench` installs it) evaluates its
random_plane by a full forward pass per grid point. Ours computes the first layer's products with the centre
and both directions once per data chunk, then combines them per point (experiments/landscape/evaluate.py).
Both get the same model (manual torch_default weights, seed 0; the package divides by zero on zero biases),
the same grid size and the same test images.
Ours runs on a local cluster of --workers single-threaded processes (its start counted in its time, and printed apart:
the scheduler and workers coming up, before the workers import the task's module), the package in one process with
torch's threads. Every timing runs in a fresh process, the methods alternating; the parent prints medians and ratios.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from machine import measured

METHODS = ("ours-manual", "ours-torch", "loss-landscapes")


def model_and_data(name, samples):
    """The arch, a float32 state dict and the first `samples` test images in the shape the arch takes."""
    import manual
    from experiments import data
    from manual import spec

    arch = spec.get(name)
    state = manual.build(arch, init="torch_default", seed=0, dtype="float32").state_dict()
    x, y = data.load("test", dtype="float32", flatten=name != "lenet", limit=samples)
    return arch, state, x, y


def time_ours(backend, workers, name, state, samples, resolution):
    """(seconds for our surface, the start of the local cluster (whose workers read the images) included; seconds of
    that start until the cluster is up; the surface's shape)."""
    from experiments.config import Config
    from experiments.landscape import spread, surfaces
    from experiments.sweep import Sweep

    cfg, settings = Config(arch=name, dtype="float32"), spread.Settings(backend=backend, eval_samples=samples)
    start = time.perf_counter()
    with Sweep(workers) as sweep:
        up = time.perf_counter() - start
        surface = surfaces.random_surface(spread.evaluator(cfg, settings, sweep), state, 0, 1.0, resolution)
    return time.perf_counter() - start, up, surface["loss"].shape


def time_package(arch, state, x, y, resolution):
    import loss_landscapes
    import loss_landscapes.metrics
    import torch

    import torch_ref

    model = torch_ref.build(arch, dtype="float32")
    model.load_state_dict(torch_ref.from_numpy(state))
    metric = loss_landscapes.metrics.Loss(torch.nn.CrossEntropyLoss(), torch.from_numpy(x), torch.from_numpy(y))
    start = time.perf_counter()
    loss = loss_landscapes.random_plane(model, metric, distance=1, steps=resolution, normalization="filter",
                                        deepcopy_model=True)
    return time.perf_counter() - start, 0.0, loss.shape


def worker(method, arch, samples, resolution, workers):
    """One timing in this process; prints {"seconds": s, "start": seconds of it starting a cluster}."""
    net_arch, state, x, y = model_and_data(arch, samples)
    if method == "loss-landscapes":
        seconds, up, shape = time_package(net_arch, state, x, y, resolution)
    else:
        seconds, up, shape = time_ours(method.split("-")[1], workers, arch, state, samples, resolution)
    assert shape == (resolution, resolution), shape
    print(json.dumps({"seconds": seconds, "start": up}))


def measure(method, arch, samples, resolution, workers):
    out = subprocess.run([sys.executable, __file__, "--worker", method, "--archs", arch, "--samples", str(samples),
                          "--resolution", str(resolution), "--workers", str(workers)],
                         check=True, capture_output=True, text=True).stdout
    timing = json.loads(out.strip().splitlines()[-1])
    print(f"  ({arch} {method}: {timing['seconds']:.1f} s, {timing['start']:.1f} s of it starting a cluster)",
          file=sys.stderr, flush=True)
    return timing


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", nargs="+", default=["mlp", "lenet"], choices=("mlp", "lenet"))
    p.add_argument("--samples", type=int, default=10_000, help="test images for mlp (default: 10000)")
    p.add_argument("--lenet-samples", type=int, default=1_000,
                   help="test images for lenet (default: 1000; the package needs about 10x longer per image)")
    p.add_argument("--resolution", type=int, default=41, help="grid points per axis (default: 41)")
    p.add_argument("--repeats", type=int, default=3, help="timings per method; the median is reported")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                   help="our single-threaded evaluation processes (default: the number of cores); the package "
                        "runs in one process with torch's default threads")
    p.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.worker, args.archs[0], args.samples, args.resolution, args.workers)
    with measured("bench_landscape"):
        print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
        for arch in args.archs:
            samples = args.samples if arch == "mlp" else args.lenet_samples
            times, starts = {m: [] for m in args.methods}, {m: [] for m in args.methods}
            for _ in range(args.repeats):
                for m in args.methods:
                    timing = measure(m, arch, samples, args.resolution, args.workers)
                    times[m].append(timing["seconds"])
                    starts[m].append(timing["start"])
            median = {m: statistics.median(t) for m, t in times.items()}
            print(f"{arch}: {args.resolution}x{args.resolution} surface on {samples} test images, float32, "
                  f"median of {args.repeats}; ours in {args.workers} processes")
            for m in args.methods:
                ratio = median.get("loss-landscapes", float("nan")) / median[m]
                runs = " ".join(f"{t:.1f}" for t in times[m])
                start = statistics.median(starts[m])
                print(f"  {m:16s} {median[m]:8.2f} s   (runs: {runs})   loss-landscapes / this = {ratio:.2f}x"
                      + (f"   (of it {start:.2f} s starting the cluster)" if start else ""))


if __name__ == "__main__":
    main()
