"""Wrong gradients no draw used to catch, each planted here and caught by the draw made
for it: a sum over the wrong one of two axes, right in shape only where their sizes are
equal; a grad_output read with another input's strides, right wherever the two share a
layout. And a statistic over ``n - 1``, which a draw at size 1 divides by zero: with
``Case.least`` every draw keeps clear of it."""

import dataclasses
import types

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cases import BY_NAME
from handgrad import DTYPES, Case, opinions
from handgrad.draws import DRAWS, LAYOUTS
from handgrad.mutants import planted
from handgrad.strategies import case_inputs

EVERY_DTYPE = pytest.mark.parametrize("dtype", DTYPES.values(), ids=list(DTYPES))


def b1_by_its_size(right):
    """``d_b1`` sums ``d_l1 (N, H)`` over the axis that is not the hidden one, found by its
    size: where N = H the search finds the batch axis first, and ``d_b1`` is a sum over
    the hidden units, (N,) where (H,) was meant, the same shape."""
    def gradients(**inputs):
        grads = right(**inputs)
        hidden = grads["l1"].shape.index(inputs["b1"].shape[0])
        return {**grads, "b1": grads["l1"].sum(1 - hidden)}
    return gradients


@EVERY_DTYPE
def test_a_sum_over_the_wrong_of_two_axes_is_caught_where_their_sizes_are_equal(dtype):
    case = BY_NAME["mlp_relu_mse"]
    wrong = planted(case, gradients=b1_by_its_size(case.module.gradients))
    for draw in ("default", "size one"):  # N and H apart, or both 1: nothing to see
        for verdict in opinions.draw_verdicts(wrong, draw, "cpu", dtype):
            assert verdict.passed, verdict.explain()
    for sizes in (case.small_dims, case.large_dims):  # the other draws': apart too
        assert sizes["N"] != sizes["H"]
    (label, inputs), = DRAWS["equal sizes"](case, "cpu", dtype)
    assert wrong.manual(inputs)["b1"].shape == inputs["b1"].shape  # only its values differ
    verdict = wrong.verdict(inputs, draw=label)
    assert [j.name for j in verdict.failures] == ["b1"], verdict.explain()
    assert "d_b1" in verdict.explain()


def v_read_with_the_strides_of_x(right):
    """The grad_output's storage read with ``x``'s strides, as a kernel handed both
    pointers and one set of strides would: right wherever ``v`` is laid out as ``x`` is."""
    def gradients(x, v):
        return right(x=x, v=torch.as_strided(v, x.shape, x.stride()))
    return gradients


def every_input_alike(case, device, dtype):
    """The layouts as drawn before: every input in the same layout, one layout a round."""
    inputs = case.inputs(device, dtype, seed=3)
    for kind, relayout in LAYOUTS.items():
        yield kind, {k: relayout(t) for k, t in inputs.items()}


@EVERY_DTYPE
def test_a_grad_output_read_with_the_strides_of_x_is_caught_by_independent_layouts(dtype):
    case = BY_NAME["gelu"]
    wrong = planted(case, gradients=v_read_with_the_strides_of_x(case.module.gradients))
    for kind, inputs in every_input_alike(case, "cpu", dtype):
        verdict = wrong.verdict(inputs, draw=kind)
        assert verdict.passed, verdict.explain()
    named = []
    for label, inputs in DRAWS["layouts"](case, "cpu", dtype):
        x, v = inputs["x"], inputs["v"]
        assert x.stride() != v.stride(), label
        reach = v.storage_offset() + sum((n - 1) * s for n, s in zip(x.shape, x.stride(),
                                                                     strict=True))
        if reach >= v.untyped_storage().nbytes() // v.element_size():  # past v's storage
            with pytest.raises(RuntimeError, match="out of bounds"):
                wrong.verdict(inputs, draw=label)
        else:
            named.append([j.name for j in wrong.verdict(inputs, draw=label).failures])
    assert named
    assert all(names == ["x"] for names in named), named

def bessel_forward(x, gamma, beta):
    """Batch norm over the batch axis with the unbiased variance, written as ports of
    makemore's batch norm write it: ``1 / (n - 1)`` in Python, an error at n = 1."""
    n = x.shape[0]
    mean = x.sum(0) / n
    xc = x - mean
    var = 1 / (n - 1) * (xc**2).sum(0)
    rstd = (var + 1e-5) ** -0.5
    xhat = xc * rstd
    return {"mean": mean, "xc": xc, "var": var, "rstd": rstd, "xhat": xhat,
            "out": gamma * xhat + beta}


def bessel_gradients(x, gamma, beta, v):
    """The fused closed form: d_x = gamma rstd / n (n v - sum v - n / (n - 1) xhat
    sum(v xhat)); d_gamma = sum(v xhat); d_beta = sum v (sums over the batch)."""
    f, n = bessel_forward(x, gamma, beta), x.shape[0]
    d_gamma = (v * f["xhat"]).sum(0)
    d_x = gamma * f["rstd"] / n * (n * v - v.sum(0) - n / (n - 1) * f["xhat"] * d_gamma)
    return {"x": d_x, "gamma": d_gamma, "beta": v.sum(0)}


BESSEL = Case(
    name="bessel_batch_norm", source="tests/test_survivors.py",
    formula="gamma (x - mean) / sqrt(var_unbiased + eps) + beta",
    closed_form="d_x = gamma rstd / n (n v - sum v - n / (n - 1) xhat sum(v xhat))",
    module=types.SimpleNamespace(
        __name__="bessel_batch_norm", forward=bessel_forward, gradients=bessel_gradients,
        SHAPES={"x": "N C", "gamma": "C", "beta": "C", "v": "N C"}),
    output="out", wrt=("x", "gamma", "beta"), dims={"N": 8, "C": 4}, grad_output="v",
    least={"N": 2})


def test_without_least_the_size_one_draw_divides_by_zero():
    without = dataclasses.replace(BESSEL, least={})
    with pytest.raises(ZeroDivisionError):
        list(opinions.draw_verdicts(without, "size one", "cpu", torch.float64))


@pytest.mark.parametrize("draw", list(DRAWS))
def test_a_case_with_least_runs_every_draw(draw):
    """float64: every draw runs (no size below 2 on the batch axis) and the right
    Bessel-corrected gradient passes it."""
    probes_ran = 0
    for verdict in opinions.draw_verdicts(BESSEL, draw, "cpu", torch.float64):
        verdict.check()
        probes_ran += 1
    assert probes_ran


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_a_case_with_least_runs_every_generated_draw(data):
    inputs = data.draw(case_inputs(BESSEL), label="inputs")
    assert inputs["x"].shape[0] >= 2
    BESSEL.verdict(inputs, draw="generated draw").check()
