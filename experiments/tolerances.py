"""The manual-vs-autograd agreement levels, shared by the report command and the tests (no torch import)."""

AGREE_F64 = dict(rtol=1e-10, atol=1e-12)   # manual vs torch autograd, float64
AGREE_F32 = dict(rtol=1e-4, atol=1e-5)     # manual vs torch autograd, float32
