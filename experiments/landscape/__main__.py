from experiments.exits import launch
launch("experiments.landscape.cli", "python -m experiments.landscape")
