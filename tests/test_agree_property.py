"""Hypothesis: random MLPs and small conv nets, random batches; every gradient agrees with torch in float64."""
from hypothesis import given
from hypothesis import strategies as st

from tests.agreement import check
from tests.random_arch import conv_nets, mlps

@given(mlps(), st.integers(0, 2**32 - 1))
def test_random_mlps_agree(net, seed):
    arch, x_shape = net
    check(arch, x_shape, "float64", seed)


@given(conv_nets(), st.integers(0, 2**32 - 1))
def test_random_conv_nets_agree(net, seed):
    arch, x_shape = net
    check(arch, x_shape, "float64", seed)
