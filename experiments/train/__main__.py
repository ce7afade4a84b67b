from experiments.exits import launch
launch("experiments.train.cli", "python -m experiments.train")
