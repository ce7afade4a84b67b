"""The `backprop-lab` command: one subcommand per command line, each imported only when chosen."""
import importlib
import sys

from experiments import exits
from experiments.claims import CLAIMS

COMMANDS = {
    "train": "train the manual and/or torch network on MNIST (python -m experiments.train)",
    "landscape": "loss landscapes across initializations (python -m experiments.landscape)",
    "compare": "manual backprop vs torch autograd, tensor by tensor (python -m experiments.compare)",
    "claims": "the course notes' claims, measured: backprop-lab claims NAME [--quick] ...",
}


def usage():
    """The help text: every subcommand and every claim."""
    lines = ["usage: backprop-lab {train,landscape,compare,claims} ...", "",
             "Backpropagation by hand in NumPy, checked against PyTorch autograd on MNIST.", "", "commands:"]
    lines += [f"  {name:10s} {text}" for name, text in COMMANDS.items()]
    lines += ["", "claims (backprop-lab claims NAME --help for each one's flags):"]
    lines += [f"  {name:18s} {text}" for name, text in CLAIMS.items()]
    lines += ["", "backprop-lab COMMAND --help shows a command's flags and their defaults."]
    return "\n".join(lines)


def main(argv=None):
    """Run the chosen subcommand; --help exits 0, a missing or unknown one is one error line and exit 2, Ctrl-C
    while a command loads one line and exit 130."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(usage())
        return exits.OK
    if not argv or argv[0] not in COMMANDS:
        problem = f"unknown command {argv[0]!r}" if argv else "a command is required"
        print(f"backprop-lab: error: {problem}; choose from {', '.join(COMMANDS)} (see --help)", file=sys.stderr)
        return exits.USAGE
    command, rest = argv[0], argv[1:]
    if command == "claims" and (not rest or rest[0] not in CLAIMS):
        problem = f"unknown claim {rest[0]!r}" if rest else "a claim name is required"
        print(f"backprop-lab claims: error: {problem}; choose from {', '.join(CLAIMS)} (see --help)", file=sys.stderr)
        return exits.USAGE
    return exits.run(f"backprop-lab {command}", dispatch, command, rest)


def dispatch(command, rest):
    """Import the chosen command's module and run its main."""
    if command == "claims":
        return importlib.import_module(f"experiments.claims.{rest[0]}").main(rest[1:])
    if command == "train":
        from experiments.train import cli
    elif command == "landscape":
        from experiments.landscape import cli
    else:
        from experiments import compare as cli
    return cli.main(rest, prog=f"backprop-lab {command}")
