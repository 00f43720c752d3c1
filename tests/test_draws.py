"""The draws' own promises: every size at or above its ``least`` and within its ``most``."""

import dataclasses
import math

import pytest
import torch
from hypothesis import given, settings

from cases import BY_NAME
from handgrad import probes
from handgrad.draws import DRAWS
from handgrad.strategies import MAX_ELEMENTS, sizes

MLP = BY_NAME["mlp_relu_mse"]
AT_LEAST = dataclasses.replace(MLP, least={"N": 3, "H": 5})


def test_the_fixed_sizes_honour_least():
    assert AT_LEAST.smallest == {"N": 3, "D": 1, "H": 5}
    assert AT_LEAST.small_dims == {"N": 3, "D": 4, "H": 5}  # still distinct, increasing
    assert MLP.small_dims == {"N": 2, "D": 3, "H": 4}
    large = dataclasses.replace(MLP, large={"N": 4096, "H": 1}, least={"H": 2}).large_dims
    assert large == {"N": 4096, "D": 40, "H": 2}
    (label, inputs), = DRAWS["size one"](AT_LEAST, "cpu", torch.float64)
    assert label == "every size at its least (N=3, H=5, the others 1)"
    assert inputs["x"].shape == (3, 1)
    assert inputs["b1"].shape == (5,)


@pytest.mark.parametrize(("least", "says"), [
    ({"Q": 2}, "least names 'Q', which is no size symbol"),
    ({"N": 0}, r"least\['N'\] is 0; it needs an integer from 1 to 64, at most dims\['N'\] = 64"),
    ({"H": 13}, r"least\['H'\] is 13; it needs an integer from 1 to 12"),
    ({"N": 2.5}, r"least\['N'\] is 2.5; it needs an integer"),
])
def test_a_least_no_draw_can_honour_is_refused(least, says):
    with pytest.raises(ValueError, match=says):
        probes.assert_declaration(dataclasses.replace(MLP, least=least))


def test_a_least_above_most_is_refused():
    attention = BY_NAME["causal_self_attention"]
    capped = dataclasses.replace(attention, dims={**attention.dims, "T": 8}, most={"T": 4},
                                 least={"T": 5})
    with pytest.raises(ValueError, match=r"least\['T'\] is 5; .* and most\['T'\] = 4"):
        probes.assert_declaration(capped)


@settings(max_examples=200, deadline=None)
@given(drawn=sizes(AT_LEAST))
def test_generated_sizes_stay_within_least_most_and_the_budget(drawn):
    assert drawn.keys() == AT_LEAST.dims.keys()
    assert all(drawn[s] >= least for s, least in AT_LEAST.smallest.items())
    assert math.prod(drawn.values()) <= MAX_ELEMENTS
