"""The course notes' claims, measured: one module per experiment, `python -m experiments.claims.<name> [--quick]`.

chain_depth        vanishing gradients in the single-chain net (section 6)
"""
