"""Training: the loop library (loop.py) and its command line (cli.py, `python -m experiments.train`)."""
from experiments.train.loop import SNAPSHOTS, Interrupted, Result, train_and_evaluate

__all__ = ["train_and_evaluate", "Result", "Interrupted", "SNAPSHOTS"]
