"""The draws' own promises: every size at or above its ``least`` and within its ``most``,
distinct symbols made equal (one common size; ties in the generated sizes), and each
input's layout chosen independently of the others'."""

import dataclasses
import itertools
import math

import pytest
import torch
from hypothesis import find, given, settings

from cases import BY_NAME, CASES
from handgrad import probes
from handgrad.draws import DRAWS, LAYOUTS, MAX_ELEMENTS, common_size, orders
from handgrad.strategies import sizes

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


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_common_size_is_the_largest_within_the_budget(case):
    tied = common_size(case)
    n = max(tied.values())
    assert all(m == n or m == case.most.get(s) for s, m in tied.items()), tied
    assert math.prod(tied.values()) <= MAX_ELEMENTS
    bigger = {s: min(m + 1, case.most.get(s, m + 1)) for s, m in tied.items()}
    assert bigger == tied or math.prod(bigger.values()) > MAX_ELEMENTS


def test_the_common_size_keeps_most_and_least():
    capped = dataclasses.replace(MLP, most={"D": 4}, least={"N": 64})
    assert common_size(capped) == {"N": 64, "D": 4, "H": 64}  # 64 * 4 * 64 = 2^14


@settings(max_examples=200, deadline=None)
@given(drawn=sizes(AT_LEAST))
def test_generated_sizes_stay_within_least_most_and_the_budget(drawn):
    assert drawn.keys() == AT_LEAST.dims.keys()
    assert all(drawn[s] >= least for s, least in AT_LEAST.smallest.items())
    assert math.prod(drawn.values()) <= MAX_ELEMENTS


def test_generated_sizes_tie_distinct_symbols():
    """Hypothesis finds a draw with N = H above 1 and D apart: a tie of two symbols alone."""
    quick = settings(max_examples=200, database=None, derandomize=True)
    found = find(sizes(MLP), lambda d: d["N"] == d["H"] > 1 and d["D"] != d["N"],
                 settings=quick)
    assert found["N"] == found["H"]


@pytest.mark.parametrize("count", [1, 2, 4, 6, 18, 24, 25, 600])
def test_every_input_meets_every_layout_and_every_two_differ(count):
    rows = orders(count)
    assert len(set(rows)) == count  # every two inputs differ in some round
    assert all(set(row) == set(range(len(LAYOUTS))) for row in rows)
    latin = [tuple((i + r) % 4 for r in range(4)) for i in range(4)]
    assert [row[:4] for row in rows[:4]] == latin[:count]  # (i + r) mod 4 first


def test_each_input_has_its_own_layout_and_the_label_says_which():
    case = BY_NAME["layer_norm"]  # x, gamma, beta, v
    rounds = list(DRAWS["layouts"](case, "cpu", torch.float64))
    assert len(rounds) == 4
    for (label, inputs), kinds in zip(rounds, zip(*orders(4), strict=True), strict=True):
        said = dict(part.split(": ") for part in label.split(": ", 1)[1].split("; "))
        assert said == {list(LAYOUTS)[kind]: name for name, kind in zip(inputs, kinds,
                                                                         strict=True)}
        assert inputs["x"].stride() != inputs["v"].stride()  # x and v always apart here
    layouts_of_x = [inputs["x"].stride() for _, inputs in rounds]
    assert (case.dims["C"], 1) in layouts_of_x  # contiguous is one of the choices
    assert any(0 in stride for stride in layouts_of_x)  # so is the expanded view
    for (_, a), (_, b) in itertools.combinations(rounds, 2):
        assert any(a[k].stride() != b[k].stride() for k in a)
