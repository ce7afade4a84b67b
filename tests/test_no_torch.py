"""manual/ is NumPy only (it imports, builds, trains and takes Hessian products with torch blocked); a manual-only
training run and a claims worker never import torch."""
import ast
import pathlib
import subprocess
import sys

import pytest

import manual

MANUAL = pathlib.Path(manual.__file__).parent

TRAIN_WITHOUT_TORCH = """
import importlib, pkgutil, sys
sys.modules["torch"] = None                                   # any `import torch` now raises ImportError
import numpy as np
import pytest

import manual
from manual import spec
for module in pkgutil.iter_modules(manual.__path__):
    importlib.import_module("manual." + module.name)
net = manual.build(spec.get("lenet"), seed=0, dtype="float32")
rng = np.random.default_rng(0)
x, y = rng.random((8, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 8)
before, grads = net.loss_and_grads(x, y)
for name, p in net.params.items():
    p -= 1e-3 * grads[name]
after, _ = net.loss_and_grads(x, y)
assert after < before, (before, after)
v = {k: np.ones_like(p) for k, p in net.params.items()}
assert net.hvp(x, y, v).keys() == net.ggnvp(x, y, v).keys() == grads.keys()   # second order too
assert "torch" not in [m.split(".")[0] for m in sys.modules if sys.modules[m] is not None]
print("ok")
"""


@pytest.mark.slow
def test_manual_imports_builds_and_trains_with_torch_blocked():
    done = subprocess.run([sys.executable, "-c", TRAIN_WITHOUT_TORCH], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_no_file_under_manual_imports_torch():
    offenders = []
    for path in sorted(MANUAL.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] == "torch"]
    assert len(list(MANUAL.rglob("*.py"))) >= 8 and not offenders, offenders


MANUAL_RUN_WITHOUT_TORCH = """
import sys
from experiments.claims import chain_depth, gd_variants, init_dependence, overparam, solutions
from experiments.config import Config
from experiments.train.cli import main
run = sys.argv[1]
assert main(["--backend", "manual", "--epochs", "1", "--limit-train", "64", "--quiet", "--run-dir", run + "/cli"]) == 0
cfg = Config(backend="manual", epochs=1, limit_train=64, lr_schedule=solutions.LR_SCHEDULE)
metrics, _ = solutions.train(cfg, run + "/claims", eval_samples=64)    # what a claims worker does
assert not metrics["diverged"], metrics
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision"))
assert not loaded, loaded[:5]
print("ok")
"""


@pytest.mark.slow
def test_a_manual_run_and_a_claims_worker_never_import_torch(tmp_path):
    done = subprocess.run([sys.executable, "-c", MANUAL_RUN_WITHOUT_TORCH, str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr
