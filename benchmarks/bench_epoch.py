"""One float32 training epoch (forward, backward, SGD step; batch 128, 60,000 images): manual NumPy vs torch eager.

Run by `make bench`. Each backend lives in its own worker process, so torch is never imported beside manual
and each peak resident set size is that backend's own; the parent alternates epochs between the workers
and prints medians and ratios. For mlp it also times the epoch's GEMMs alone (the matmul bound), and those
GEMMs with manual's SGD step after each batch (a floor for any NumPy epoch with this optimizer).
The data is random, of MNIST's shape and dtype: the benchmark needs no download.
"""
import argparse
import ctypes
import glob
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

from machine import measured
from manual.optim import SGD

IMAGES, BATCH, CLASSES = 60_000, 128, 10
LR, MOMENTUM = 0.01, 0.9
WARMUP_BATCHES = 50
ARCHS = ("mlp", "lenet")
BACKEND_ORDER = ("torch", "manual")


def data(arch):
    """Random MNIST-like images (uint8 / 256 as float32, (N, 784) or (N, 1, 28, 28)) and int64 labels."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (IMAGES, 784), dtype=np.uint8).astype(np.float32)
    x *= np.float32(1 / 256)
    y = rng.integers(0, CLASSES, IMAGES)
    return (x if arch == "mlp" else x.reshape(IMAGES, 1, 28, 28)), y


def batches(n=IMAGES):
    """(start, stop) of each mini-batch of an epoch, the last one short."""
    return [(i, min(i + BATCH, n)) for i in range(0, n, BATCH)]


def rss_mb():
    """This process's resident set size now, in MB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb():
    """This process's peak resident set size so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def blas_threads():
    """The thread count of NumPy's OpenBLAS, asked through its own entry point ("?" if not found)."""
    libs = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*")
    for path in glob.glob(libs):
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads"):
            if hasattr(lib, name):
                return str(getattr(lib, name)())
    return "?"


def manual_worker(arch):
    """The manual backend: (step(start, stop), threads text, matmul-bound epoch or None)."""
    import manual
    from manual import spec

    x, y = data(arch)
    net = manual.build(spec.get(arch), seed=0, dtype="float32")
    opt = SGD(net.params, lr=LR, momentum=MOMENTUM)

    def step(a, b):
        _, grads = net.loss_and_grads(x[a:b], y[a:b], reduction="mean")
        opt.step(grads)

    threads = f"OpenBLAS {blas_threads()}, elementwise 1"
    return step, threads, (gemm_epoch(net) if arch == "mlp" else None)


def gemm_epoch(net):
    """(run(step), GFLOP): the epoch's GEMMs alone, with the Linear layers' shapes and operand layouts.

    run(True) also takes manual's SGD step after each batch's GEMMs, on a copy of the parameters with the
    GEMMs' dW as gradients: the floor of any NumPy epoch that uses this optimizer.
    """
    rng = np.random.default_rng(1)
    params = {k: v.copy() for k, v in net.params.items()}
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    opt = SGD(params, lr=LR, momentum=MOMENTUM)
    weights = [layer.params["weight"] for layer in net.layers if "weight" in layer.params]   # (out, in)
    grad = [g for k, g in grads.items() if k.endswith(".weight")]
    sizes = batches()
    acts = {b - a: [rng.random((b - a, w.shape[1]), dtype=np.float32) for w in weights] for a, b in sizes}
    douts = {b - a: [rng.random((b - a, w.shape[0]), dtype=np.float32) for w in weights] for a, b in sizes}

    def run(step):
        for a, b in sizes:
            xs, ds = acts[b - a], douts[b - a]
            for w, xi in zip(weights, xs):
                xi @ w.T                                    # forward (B, out)
            for i, (w, xi, di, g) in enumerate(zip(weights, xs, ds, grad)):
                np.dot(di.T, xi, out=g)                     # dW (out, in)
                if i:
                    di @ w                                  # dx (B, in); the first layer needs none
            if step:
                opt.step(grads)
    flops = sum(2 * (b - a) * w.size * (3 if i else 2) for a, b in sizes for i, w in enumerate(weights))
    return run, flops / 1e9


def torch_worker(arch):
    """The torch eager backend: (step(start, stop), threads text, None)."""
    import torch
    import torch_ref
    from manual import spec

    x, y = data(arch)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    model = torch_ref.build(spec.get(arch), dtype="float32", seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(a, b):
        opt.zero_grad()
        loss_fn(model(x[a:b]), y[a:b]).backward()
        opt.step()

    return step, f"torch {torch.get_num_threads()} (intra-op)", None


def serve(backend, arch):
    """Worker loop: answer "epoch", "bound" and "stats" on stdin with one JSON line each."""
    step, threads, bound = (manual_worker if backend == "manual" else torch_worker)(arch)
    rss_before = rss_mb()
    for a, b in batches()[:WARMUP_BATCHES]:
        step(a, b)
    print(json.dumps({"ready": True}), flush=True)
    for command in sys.stdin:
        command = command.strip()
        if command == "epoch":
            t = time.perf_counter()
            for a, b in batches():
                step(a, b)
            reply = {"seconds": time.perf_counter() - t}
        elif command in ("bound", "floor"):
            run, gflop = bound
            t = time.perf_counter()
            run(step=command == "floor")
            reply = {"seconds": time.perf_counter() - t, "gflop": gflop}
        else:
            reply = {"peak_mb": peak_rss_mb(), "before_mb": rss_before, "threads": threads}
        print(json.dumps(reply), flush=True)


class Worker:
    """A backend's worker process, spoken to one command at a time."""

    def __init__(self, backend, arch):
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", backend, "--arch", arch]
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root)
        self.read()

    def ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.read()

    def read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark worker {self.proc.args[3:]} exited with {self.proc.wait()}")
        return json.loads(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def measure(arch, repeats):
    """Alternate epochs between the two workers; {backend: (epoch seconds list, stats)} and the bound list."""
    workers = {b: Worker(b, arch) for b in BACKEND_ORDER}
    times = {b: [] for b in BACKEND_ORDER}
    bound = []
    try:
        for _ in range(repeats):
            for backend, worker in workers.items():
                times[backend].append(worker.ask("epoch")["seconds"])
            if arch == "mlp":
                bound.append({c: workers["manual"].ask(c) for c in ("bound", "floor")})
        stats = {b: w.ask("stats") for b, w in workers.items()}
    finally:
        for worker in workers.values():
            worker.close()
    return {b: (times[b], stats[b]) for b in BACKEND_ORDER}, bound


def report(arch, results, bound):
    """Print one architecture's table."""
    med = {b: statistics.median(results[b][0]) for b in BACKEND_ORDER}
    print(f"\n{arch}: one epoch, float32, batch {BATCH}, {IMAGES:,} images, SGD lr={LR} momentum={MOMENTUM}")
    print(f"  {'backend':<8} {'median s':>9} {'min s':>8} {'peak RSS MB':>12} {'over setup MB':>14}  threads")
    for b in BACKEND_ORDER:
        t, s = results[b]
        print(f"  {b:<8} {med[b]:9.3f} {min(t):8.3f} {s['peak_mb']:12.0f} {s['peak_mb'] - s['before_mb']:14.0f}"
              f"  {s['threads']}")
    print(f"  manual / torch = {med['manual'] / med['torch']:.2f}")
    if bound:
        secs, floor = (statistics.median(r[c]["seconds"] for r in bound) for c in ("bound", "floor"))
        gflop = bound[0]["bound"]["gflop"]
        print(f"  matmul bound: {gflop:.1f} GFLOP of GEMMs (forward, dW, dx but the first layer's) at"
              f" {gflop / secs:.0f} GFLOP/s = {secs:.3f} s; manual / bound = {med['manual'] / secs:.2f}")
        print(f"  floor: the same GEMMs + manual's SGD step after each = {floor:.3f} s = {floor / secs:.2f}x the bound"
              f" (no bias, ReLU or loss)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="epochs per backend (default 5); medians are printed")
    parser.add_argument("--arch", choices=(*ARCHS, "all"), default="all", help="architecture (default all)")
    parser.add_argument("--worker", choices=BACKEND_ORDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return serve(args.worker, args.arch)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    with measured("bench_epoch"):
        print(f"each backend in its own process, epochs alternated, {WARMUP_BATCHES} warm-up batches each; "
              f"peak RSS includes the {IMAGES:,} float32 images")
        for arch in (ARCHS if args.arch == "all" else (args.arch,)):
            report(arch, *measure(arch, args.repeats))


if __name__ == "__main__":
    main()
