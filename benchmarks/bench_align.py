"""Aligning two mlp (784-256-128-10) solutions: weight matching (target < 1 s) and activation matching on 2,000
training images (target < 2 s), float32 states, medians of --repeats timings printed beside the targets.

The two solutions are trained here first, from kaiming_normal seeds 0 and 1: --epochs of manual SGD (momentum 0.9,
lr 0.05, batch 128) on the first --train-images MNIST training images (BACKPROP_LAB_DATA or ./data), float32.
"""
import argparse
import statistics
import sys
import time

import manual
from experiments import data
from experiments.landscape import align
from machine import measured
from manual import spec
from manual.optim import SGD

TARGETS = {"weight matching": 1.0, "activation matching": 2.0}   # seconds, issue 14


def solution(arch, x, y, seed, epochs):
    """A float32 state dict of arch after `epochs` of SGD on (x, y)."""
    net = manual.build(arch, init="kaiming_normal", seed=seed, dtype="float32")
    opt = SGD(net.params, lr=0.05, momentum=0.9)
    for epoch in range(epochs):
        for xb, yb in data.batches(x, y, 128, seed, epoch):
            opt.step(net.loss_and_grads(xb, yb, reduction="mean")[1])
    return net.state_dict()


def timed(fn, repeats):
    """(seconds of each of `repeats` calls, the last result)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=1, help="training epochs per solution (default: 1)")
    p.add_argument("--train-images", type=int, default=60_000,
                   help="MNIST training images the solutions are trained on (default: 60000)")
    p.add_argument("--samples", type=int, default=2_000,
                   help="training images activation matching reads (default: 2000)")
    p.add_argument("--repeats", type=int, default=5, help="timings per method; the median is reported "
                                                                   "(default: 5)")
    args = p.parse_args()
    for flag in ("epochs", "train_images", "samples", "repeats"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be a positive int, got {getattr(args, flag)}")
    with measured("bench_align"):
        arch = spec.get("mlp")
        x, y = data.load("train", dtype="float32", limit=args.train_images)
        start = time.perf_counter()
        a, b = (solution(arch, x, y, seed, args.epochs) for seed in (0, 1))
        print(f"trained two mlp solutions ({args.epochs} epoch(s) on {len(x)} images, float32) in "
              f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
        runs = {"weight matching": timed(lambda: align.weight_matching(arch, a, b), args.repeats),
                "activation matching": timed(lambda: align.activation_matching(arch, a, b, x[:args.samples]),
                                             args.repeats)}
        print(f"mlp 784-256-128-10, float32 states, median of {args.repeats}")
        for name, (times, result) in runs.items():
            median = statistics.median(times)
            extra = f", {result[2]} sweeps" if name == "weight matching" else f", {args.samples} images"
            print(f"  {name:20s} {median:7.3f} s   target {TARGETS[name]:.0f} s   target / this = "
                  f"{TARGETS[name] / median:5.1f}x   (runs: {' '.join(f'{t:.3f}' for t in times)}{extra})")


if __name__ == "__main__":
    main()
