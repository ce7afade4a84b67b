"""Training: the loop library (loop.py) and its command line (cli.py, `python -m experiments.train`)."""
__all__ = ["train_and_evaluate", "Result", "Interrupted", "SNAPSHOTS"]


def __getattr__(name):
    """The loop's names, imported on first use: `python -m experiments.train` starts without them, so Ctrl-C
    while it loads is caught (experiments.exits.launch)."""
    if name not in __all__:
        raise AttributeError(f"module 'experiments.train' has no attribute {name!r}")
    from experiments.train import loop
    return getattr(loop, name)
