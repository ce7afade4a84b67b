"""Loss landscapes across initializations: directions, batched evaluation, surfaces, TensorBoard records."""

EVALUATION_BACKENDS = ("manual", "torch")   # the engines that evaluate landscape points; evaluation_backend(name)


def evaluation_backend(name):
    """The EvaluationBackend class of an engine; torch is imported only for "torch"."""
    if name == "manual":
        from experiments.landscape.evaluate import ManualEvaluation
        return ManualEvaluation
    if name == "torch":
        from experiments.landscape.torch_eval import TorchEvaluation
        return TorchEvaluation
    raise ValueError(f"unknown evaluation backend {name!r}; valid: {', '.join(EVALUATION_BACKENDS)}")
