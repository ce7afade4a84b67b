"""`python -m experiments.compare` (and `backprop-lab compare`): the agreement table of one architecture."""
import sys

from experiments import exits
from experiments.agreement import LOSSES, TOLERANCES, compare, default_loss, table
from experiments.devices import DEVICES, resolve
from experiments.flags import Parser, positive_int, seed, widths
from manual import spec
from manual.losses import REDUCTIONS


def parser(prog="python -m experiments.compare"):
    """The flags of the comparison command."""
    p = Parser(
        prog=prog,
        description="Compare the manual NumPy backward pass with torch autograd on one architecture: same arch, "
                    "same weights (manual torch-default init, copied into torch), same random inputs. Prints one "
                    "row per tensor (output, loss, input gradient, every parameter gradient) and exits 1 if any "
                    "differs by more than atol + rtol * |torch| anywhere or has a relative error "
                    "max|a - b| / max(|a| + |b|) above rtol (no floor: a vanishing gradient must agree to rtol of "
                    "its own size); float64: rtol 1e-10, atol 1e-12; float32: rtol 1e-4, atol 1e-5.")
    p.add_argument("--arch", default="lenet", choices=sorted(spec.ARCHITECTURES),
                   help="named architecture from manual.spec (default: lenet)")
    p.add_argument("--hidden", type=widths, help="mlp only: hidden widths, comma-separated, e.g. 64,32")
    p.add_argument("--activation", choices=sorted(spec.ACTIVATIONS),
                   help="chain and mlp only: the activation (defaults: sigmoid for chain, relu for mlp)")
    p.add_argument("--depth", type=positive_int, help="chain only: number of Linear(1, 1)+activation blocks (default 8)")
    p.add_argument("--dtype", default="float64", choices=sorted(TOLERANCES),
                   help="dtype of weights, inputs and both computations; sets the tolerance (default: float64)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="number of random inputs (default: 8)")
    p.add_argument("--reduction", default="sum", choices=REDUCTIONS,
                   help="loss reduction over the batch: sum (the notes' L(W)) or mean (default: sum)")
    p.add_argument("--loss", choices=sorted(LOSSES),
                   help="default: cross_entropy against random labels, or mse against random targets when the "
                        "net has a single output (chain), where cross-entropy is identically 0")
    p.add_argument("--seed", type=seed, default=0, help="seeds the weights, inputs and targets (default: 0)")
    p.add_argument("--device", choices=DEVICES, default="cpu",
                   help="where the torch side computes: cpu, cuda, or auto (cuda when torch sees a GPU, else cpu); "
                        "the manual side is NumPy on the CPU (default: cpu)")
    return p


def main(argv=None, prog="python -m experiments.compare"):
    """Print the comparison table; return 1 if any tensor disagrees (other codes: experiments.exits)."""
    return exits.run(prog, command, argv, prog)


def command(argv, prog):
    """main's work: flags, the comparison, the table."""
    p = parser(prog)
    args = p.parse_args(argv)
    options = {k: v for k, v in (("hidden", args.hidden), ("activation", args.activation), ("depth", args.depth))
               if v is not None}
    try:
        arch = spec.get(args.arch, **options)
    except ValueError as e:
        p.error(str(e))
    try:
        device = resolve(args.device)
    except ValueError as err:
        p.error(str(err))
    loss = args.loss or default_loss(arch)
    rows = compare(arch, args.dtype, args.batch_size, args.reduction, args.seed, loss, device)
    tol = TOLERANCES[args.dtype]
    print(f"{args.arch}: {spec.describe(arch)}")
    print(f"{args.dtype}, batch {args.batch_size}, {loss} ({args.reduction}), seed {args.seed}; "
          f"pass: |manual - torch| <= {tol['atol']:g} + {tol['rtol']:g} * |torch| everywhere "
          f"and rel error <= {tol['rtol']:g}; torch on {device}\n")
    print(table(rows))
    failed = [r for r in rows if not r.ok]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} tensors agree" + (f", {len(failed)} FAIL" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
