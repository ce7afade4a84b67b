"""The course notes' claims, measured: one module per experiment, `python -m experiments.claims.<name> [--quick]`
(or `backprop-lab claims <name>`). harness (flags, output, CSV, PNG, TensorBoard, the sweep runner) and solutions
(train, evaluate and compare trained networks) are shared by them."""

CLAIMS = {   # module name -> what it measures (the course notes' section)
    "chain_depth": "vanishing gradients in the single-chain net (section 6)",
    "backend_agreement": "manual backprop vs torch autograd through whole training runs (section 9)",
    "gd_variants": "batch GD vs SGD vs mini-batch SGD on one budget of examples, with λ_max of each solution "
                   "(section 3)",
    "edge_of_stability": "full-batch GD at three step sizes: does λ_max rise to 2/η and hover there? (section 3)",
    "init_dependence": "schemes x seeds: spread, distances and barriers (raw, aligned, Bézier) between solutions, "
                       "zero-init symmetry (section 8)",
    "overparam": "widths 8 -> 1024 x seeds: spread across initializations and barriers (raw, aligned, Bézier) as the "
                 "net widens (section 8)",
}
