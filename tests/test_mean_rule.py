"""The verdict's second statistic below float64 (``handgrad.mean_rule``), where autograd
gave up, and a failure's word on whether manual is wrong or less accurate."""

import types

import pytest
import torch

from cases import BY_NAME, CASES
from handgrad import Case, measure
from handgrad.mutants import planted
from handgrad.probes import detection_limit
from handgrad.verdict import K, judge

F64, BF16, F16 = torch.float64, torch.bfloat16, torch.float16


def test_an_error_spread_over_every_entry_fails_though_the_worst_entry_passes():
    """bfloat16, 512 entries: autograd the truth rounded, manual the truth 2 % high. Its
    worst entry is within the ratio rule's floor (4 ulps at the scale, 3 % of it); its
    mean error is 2 % of the mean |truth|, past twice autograd's mean plus half an ulp."""
    truth = torch.randn(512, generator=torch.Generator().manual_seed(0), dtype=F64)
    v = judge("", {"g": (truth * 1.02).to(BF16)}, {"g": truth.to(BF16)}, {"g": truth})
    (j,) = v.judgements
    assert not j.broke_max
    assert j.broke_mean
    assert not v.passed
    assert "on average over the entries above the ratio rule's allowance: manual's mean error" \
        in v.explain()


def test_a_right_gradient_rounded_another_way_passes_the_mean_rule():
    """Manual rounded through float16 on its way to bfloat16 (two roundings to autograd's
    one): off by a little more on average, within twice autograd's mean."""
    truth = torch.randn(512, generator=torch.Generator().manual_seed(1), dtype=F64)
    v = judge("", {"g": truth.to(F16).to(BF16)}, {"g": truth.to(BF16)}, {"g": truth})
    assert v.passed, v.explain()


def test_float32_is_judged_by_its_worst_entry_alone():
    """A right float32 form that cancels in another order: every entry 1.5 eps of itself
    off (1.5 to 3 ulps) where autograd is the truth rounded (half an ulp at worst). Its worst entry
    is within twice autograd's plus the floor; its mean, 8 times autograd's, is the order's,
    not a mistake, and is not judged in float32. The same error in bfloat16 fails."""
    truth = torch.randn(512, generator=torch.Generator().manual_seed(3), dtype=F64)
    for dtype, passes in ((torch.float32, True), (BF16, False)):
        ulps = torch.finfo(dtype).eps * truth.abs()
        got = judge("", {"g": (truth + 1.5 * ulps).to(dtype)}, {"g": truth.to(dtype)},
                    {"g": truth})
        assert got.passed is passes, got.explain()
        assert not got.judgements[0].broke_max


def test_noise_where_the_truth_is_zero_is_left_to_the_ratio_rule():
    """bfloat16, 512 entries, every other one exactly 0, where autograd is exactly 0 too
    and manual three ulps of the scale off (a right form's noise, as llm.c's attention on
    an exact ``d_q`` of 0): the ratio rule's floor allows it, and the mean rule judges only
    the entries that stand above that allowance, where a 2 % error still fails."""
    gen = torch.Generator().manual_seed(2)
    truth = torch.randn(512, generator=gen, dtype=F64)
    truth[::2] = 0
    sign = torch.randn(512, generator=gen, dtype=F64).sign()
    noise = torch.where(truth == 0, 3 * float(truth.abs().max()) * 2**-8 * sign, 0)
    given = {"g": truth.to(BF16)}, {"g": truth}
    right = judge("", {"g": (truth + noise).to(BF16)}, *given)
    assert right.passed, right.explain()
    assert judge("", {"g": (truth * 1.02 + noise).to(BF16)}, *given).judgements[0].broke_mean


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize(("dtype", "at_most"), [(BF16, 5e-2), (F16, 5e-3)],
                         ids=["bfloat16", "float16"])
def test_half_precision_detection_limit(case, dtype, at_most):
    """A uniform relative error this small or larger is caught in half precision, where
    the ratio rule alone let 1e-1 (bfloat16) and 1e-2 (float16) through; 2e-2 and 2e-3 or
    less where some gradient has more than a few entries (README)."""
    assert detection_limit(case, dtype) <= at_most


def test_where_autograd_gave_up_manual_is_allowed_autograds_error_elsewhere():
    """Autograd's NaN where the truth is 0: manual there may be as far off as the rule allows
    anywhere in the tensor, ``K`` times autograd's error at its other entries (1e-2), and
    no further."""
    truth = {"g": torch.tensor([0.0, 1.0, -2.0], dtype=F64)}
    autograd = {"g": torch.tensor([float("nan"), 1.01, -2.0], dtype=F16)}
    near, far = 0.9 * K * 0.01, 1.5 * K * 0.01
    assert judge("", {"g": torch.tensor([near, 1.0, -2.0], dtype=F16)}, autograd, truth).passed
    v = judge("", {"g": torch.tensor([far, 1.0, -2.0], dtype=F16)}, autograd, truth)
    assert "where autograd gave nan and the truth is 0.0" in v.explain()


def _module(name, shapes, forward, gradients):
    module = types.ModuleType(name)
    module.SHAPES, module.forward, module.gradients = shapes, forward, gradients
    return module


def _rstd_forward(x, w, b):  # llm.c's layernorm_forward: the mean as sum / C, and rstd
    mean = x.sum(-1, keepdim=True) / x.shape[-1]
    rstd = ((x - mean) ** 2).mean(-1, keepdim=True).add(1e-5) ** -0.5
    norm = (x - mean) * rstd
    return {"norm": norm, "out": norm * w + b}


def _rstd_gradients(x, w, b, v):  # llm.c's layernorm_backward
    norm, rstd = _rstd_forward(x, w, b)["norm"], None
    rstd = ((x - x.sum(-1, keepdim=True) / x.shape[-1]) ** 2).mean(-1, keepdim=True).add(
        1e-5) ** -0.5
    dnorm = v * w
    dx = (dnorm - dnorm.mean(-1, keepdim=True)
          - norm * (dnorm * norm).mean(-1, keepdim=True)) * rstd
    return {"x": dx, "w": (v * norm).sum(0), "b": v.sum(0)}


RSTD = Case(name="rstd_layer_norm", source="llm.c layernorm_backward", formula="",
            closed_form="", module=_module("rstd_layer_norm", {"x": "N C", "w": "C", "b": "C",
                                                               "v": "N C"},
                                           _rstd_forward, _rstd_gradients),
            output="out", wrt=("x", "w", "b"), grad_output="v", dims={"N": 1, "C": 5})


def test_a_constant_float16_row_through_rstd_is_less_accurate_not_wrong():
    """llm.c's layer-norm backward on ``x = 1.8555`` five times, weight and dout 0.001, in
    float16: float16 sums the row to 9.28, so every ``norm`` is -0.295 where the truth's is
    0, and the closed form, which takes ``mean(norm) = 0`` for granted, gives -1.8e-5
    where the truth is 0. Autograd's ``rstd^3`` overflows (NaN); with float32's range it
    differentiates what float16 computed and gives 0, and at 8 nearby inputs it stays
    within 1.1e-6 of the truth while this form is 1.6e-5 to 3.1e-5 off. Less accurate
    than autograd, right in float64, and the failure says which."""
    row = {"x": torch.full((1, 5), 1.8555), "w": torch.full((5,), 0.001),
           "b": torch.zeros(5), "v": torch.full((1, 5), 0.001)}
    half = {k: t.to(F16) for k, t in row.items()}
    v = RSTD.verdict(half)
    assert measure(RSTD.reference, half).autograd["x"].isnan().all()
    assert float(RSTD.manual(half)["x"][0, 0]) == pytest.approx(-1.8e-5, rel=0.01)
    assert [j.name for j in v.failures] == ["x"]
    assert "less accurate than autograd in float16 (right in float64)" in v.explain()
    assert RSTD.verdict({k: t.double() for k, t in half.items()}).passed


def test_a_wrong_gradient_is_told_from_a_less_accurate_one():
    """Below float64 a failure runs manual again in float64: a gradient 5 % off is off
    there too (wrong); one that sums in bfloat16, as a kernel that accumulates in the low
    dtype does, is right there (less accurate)."""
    case = BY_NAME["linear_xw"]
    right = case.module.gradients

    def five_percent(**inputs):
        return {k: g * 1.05 for k, g in right(**inputs).items()}

    def summed_in_the_dtype(**inputs):  # d_w = X^T r, each product added in turn
        X, w, y = inputs["X"], inputs["w"], inputs["y"]
        r = X @ w - y
        d_w = torch.zeros_like(w)
        for n in range(len(X)):
            d_w = d_w + X[n, :, None] * r[n]
        return {"w": d_w}

    inputs = case.inputs("cpu", BF16, N=512, D=64)
    wrong = planted(case, gradients=five_percent).verdict(inputs)
    assert "wrong: off in float64 too" in wrong.explain()
    slack = planted(case, gradients=summed_in_the_dtype).verdict(inputs)
    assert not slack.passed
    assert "less accurate than autograd in bfloat16 (right in float64)" in slack.explain()
