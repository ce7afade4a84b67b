"""Where the torch side computes: --device cpu | cuda | auto, resolved and checked before any work starts."""

DEVICES = ("cpu", "cuda", "auto")   # the values of every --device flag; auto = cuda when torch sees a GPU, else cpu
NO_CUDA = "no CUDA device: torch.cuda.is_available() is False"


def resolve(name):
    """"cpu" or "cuda" for a --device value (torch imported only for cuda and auto); else a one-line ValueError."""
    if name not in DEVICES:
        raise ValueError(f"--device {name!r} is invalid; choose from {', '.join(DEVICES)}")
    if name == "cpu":
        return "cpu"
    import torch
    if torch.cuda.is_available():
        return "cuda"
    if name == "auto":
        return "cpu"
    raise ValueError(NO_CUDA)


def numpy_only(backend, device):
    """ValueError when a NumPy (manual) backend is asked for cuda: it computes on the CPU only."""
    if backend == "manual" and device == "cuda":
        raise ValueError("--device cuda: the manual backend is NumPy on the CPU only; use --backend torch "
                         "(or both: torch on the GPU, manual on the CPU)")


def of(backend, device):
    """The device a backend computes on: device for torch, the CPU for manual (NumPy)."""
    return device if backend == "torch" else "cpu"
