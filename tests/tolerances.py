"""Every tolerance the tests use, in one place; rtol and atol always go together."""
from experiments.tolerances import AGREE_F32, AGREE_F64  # noqa: F401  (the report command uses them too)

FINITE_DIFF = 1e-7            # rel_error of a backward pass against central differences (float64)
CHAIN_CLOSED_FORM = 1e-12     # the notes' recursion vs the generic backward
CHAIN_AUTOGRAD = 1e-10        # the notes' recursion vs torch autograd, depth <= 30, float64 (measured: < 1e-12)
TRAJECTORY = 1e-8             # parameters after 200 optimizer steps, manual vs torch.optim
OPTIM_HAND = dict(rtol=1e-14, atol=1e-15)     # one or two optimizer steps vs the test's hand-computed values (float64)
OPTIM_MINIMUM = dict(rtol=0, atol=1e-10)      # parameters after 1000 optimizer steps on a quadratic vs its minimiser
SAME_WEIGHTS_FORWARD = 1e-12  # rel_error of float64 outputs, manual vs torch on identical weights (summation order)
ROUNDING_F64 = dict(rtol=1e-13, atol=0)    # the same formula computed two ways in float64: rounding only
ROUNDING_F32 = dict(rtol=1e-6, atol=0)     # the same, in float32
SAMPLE_FRACTION = 0.01        # |observed - expected| fraction of dropped units (~7 sigma at 200,000 draws)
INIT_SPREAD = 0.01            # relative error of an initializer's sample std (~7 sigma at 500,000 draws)
TORCH_GRADCHECK = dict(rtol=1e-6, atol=1e-8)  # torch.autograd.gradcheck (its defaults, 1e-3 / 1e-5, pass a 0.1% error)
TRAINED_F64 = dict(rtol=1e-9, atol=1e-12)  # one epoch of training, manual vs torch backend, float64


def assert_finite_diff(errors):
    """Every relative error in {name: error} at most FINITE_DIFF."""
    worst = max(errors, key=errors.get)
    assert errors[worst] <= FINITE_DIFF, f"{worst}: rel error {errors[worst]:.3g} > {FINITE_DIFF}"
HVP_AGREE = 1e-10             # relative() of manual H v (and GGN v) vs torch's double backward / torch.func (measured: ~1e-15)
HVP_SYMMETRY = 1e-12          # |u.Hv - v.Hu| / (|u.Hv| + |v.Hu|), float64
HVP_FINITE_DIFF = 1e-6        # relative() of H v vs central differences of the gradient along v (h = 1e-5)
HESSIAN_EIGEN = 1e-8          # eigenvalues from products (eigsh) vs numpy.linalg.eigh of the full Hessian, / max |λ|
DENSITY_INTEGRAL = dict(rtol=1e-6, atol=0)   # SLQ density on its grid (trapezoid) vs 1 and vs the quadrature's moments
QUADRATURE_F64 = dict(rtol=1e-10, atol=0)    # Gauss-Lanczos moments k <= 2 vs v^T H^k v of the same start (exact in theory)
STANDARD_ERRORS = 4.0         # a seeded stochastic estimate lies within this many (exact) standard errors of the truth
CURVATURE_EIGEN = 1e-3          # the landscape's eigsh (tol 1e-3, jobs.CURVATURE) vs eigh of the full Hessian, / max |λ|
DEVICE_F64 = dict(rtol=1e-10, atol=1e-12)          # the same torch computation on cuda vs the CPU, float64
DEVICE_TRAINED_F64 = dict(rtol=1e-9, atol=1e-12)   # one epoch of torch training on cuda vs the CPU, float64
