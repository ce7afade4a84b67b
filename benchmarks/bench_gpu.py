"""The torch side on a GPU (`--device cuda`) beside the CPU, in one run: a float32 mlp training epoch, a 41x41
landscape of mlp and the agreement report.

1. One epoch of the torch backend's trainer (experiments.backends.torch.TorchTrainer: its per-step finiteness checks
   included), mlp, float32, batch 128, 60,000 images, SGD with momentum: cuda vs cpu, medians of --repeats epochs.
2. The 41x41 filter-normalised random surface of mlp (float32) on 10,000 images by the landscape's torch evaluation
   backend (first-layer trick, one process): cuda vs cpu.
3. The agreement report (experiments.agreement.compare: manual NumPy on the CPU vs torch autograd on cuda), float64
   and float32, for mlp and lenet: passing tensors and the largest relative error.
The images are random, of MNIST's shape and dtype, so the script needs no download. Without a GPU it prints one
line and exits 0.
"""
import argparse
import statistics
import sys
import time

import numpy as np
import torch

from machine import measured

IMAGES, BATCH, EVAL_IMAGES, RESOLUTION = 60_000, 128, 10_000, 41
DEVICES = ("cuda", "cpu")


def images(n, seed=0):
    """n random MNIST-like rows (uint8 / 256 as float32, (n, 784)) and int64 labels."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 784), dtype=np.uint8).astype(np.float32) / np.float32(256), rng.integers(0, 10, n)


def sync(device):
    """Wait for the GPU's queued work, so a timer around it measures it."""
    if device == "cuda":
        torch.cuda.synchronize()


def epoch_seconds(device, repeats):
    """Seconds of each of `repeats` TorchTrainer epochs (mlp, float32, batch 128) on device, after one warm-up."""
    import manual
    from experiments.backends.torch import TorchTrainer
    from experiments.config import Config, arch_of

    cfg = Config(backend="torch", arch="mlp", dtype="float32", device=device)
    arch = arch_of(cfg)
    trainer = TorchTrainer(arch, cfg, manual.build(arch, seed=0, dtype="float32").state_dict())
    x, y = images(IMAGES)
    spans = [(lo, min(lo + BATCH, IMAGES)) for lo in range(0, IMAGES, BATCH)]
    times = []
    for r in range(repeats + 1):
        sync(device)
        start = time.perf_counter()
        for lo, hi in spans:
            trainer.step(x[lo:hi], y[lo:hi])
        sync(device)
        if r:                                                   # the first epoch warms up (kernels, allocator)
            times.append(time.perf_counter() - start)
    return times


def surface_seconds(device):
    """(seconds, centre loss) of the 41x41 random surface of mlp on 10,000 images, torch evaluation on device."""
    import manual
    from experiments.landscape import surfaces
    from experiments.landscape.evaluate import Evaluator
    from manual import spec

    arch = spec.get("mlp")
    centre = manual.build(arch, init="torch_default", seed=0, dtype="float32").state_dict()
    x, y = images(EVAL_IMAGES, seed=1)
    evaluate = Evaluator(arch, x, y, backend="torch", dtype="float32", device=device)
    sync(device)
    start = time.perf_counter()
    surface = surfaces.random_surface(evaluate, centre, 0, 1.0, RESOLUTION)
    sync(device)
    return time.perf_counter() - start, float(surface["loss"][RESOLUTION // 2, RESOLUTION // 2])


def agreement_lines():
    """One line per (arch, dtype): tensors passing and the largest relative error, torch on cuda."""
    from experiments.agreement import compare
    from manual import spec

    lines = []
    for arch in ("mlp", "lenet"):
        for dtype in ("float64", "float32"):
            rows = compare(spec.get(arch), dtype, batch_size=8, device="cuda")
            worst = max(rows, key=lambda r: r.rel)
            lines.append(f"  {arch:<6} {dtype}: {sum(r.ok for r in rows)} of {len(rows)} tensors agree; "
                         f"largest rel error {worst.rel:.2e} ({worst.name})")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per device (default 3); medians printed")
    parser.add_argument("--skip-cpu-surface", action="store_true",
                        help="time the 41x41 surface on cuda only (on the CPU it takes minutes)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_gpu: no CUDA device (torch.cuda.is_available() is False): nothing to measure")
        return 0
    with measured("bench_gpu"):
        print(f"GPU: {torch.cuda.get_device_name()}; torch {torch.__version__}, CUDA {torch.version.cuda}; "
              f"CPU side: torch {torch.get_num_threads()} threads; TF32 matmul {torch.backends.cuda.matmul.allow_tf32}")
        epochs = {d: epoch_seconds(d, args.repeats) for d in DEVICES}
        med = {d: statistics.median(t) for d, t in epochs.items()}
        print(f"\n1. torch backend, mlp epoch, float32, batch {BATCH}, {IMAGES:,} images (median of {args.repeats})")
        for d in DEVICES:
            print(f"  {d:<5} {med[d]:8.3f} s   (min {min(epochs[d]):.3f})")
        print(f"  cpu / cuda = {med['cpu'] / med['cuda']:.2f}")
        print(f"\n2. landscape, {RESOLUTION}x{RESOLUTION} random surface of mlp, float32, {EVAL_IMAGES:,} images, "
              f"torch evaluation backend")
        surface = {d: surface_seconds(d) for d in DEVICES if d == "cuda" or not args.skip_cpu_surface}
        for d, (seconds, loss) in surface.items():
            print(f"  {d:<5} {seconds:8.2f} s   (centre loss {loss:.6f})")
        if "cpu" in surface:
            print(f"  cpu / cuda = {surface['cpu'][0] / surface['cuda'][0]:.2f}")
        print("\n3. agreement report, manual (NumPy, CPU) vs torch autograd on cuda, batch 8, seed 0")
        print("\n".join(agreement_lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
