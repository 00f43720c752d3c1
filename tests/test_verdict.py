"""The verdict itself: the ratio rule, its floor, float64, non-finite entries, its message,
and what weaker checks let through that it does not."""

import pytest
import torch

from cases import BY_NAME
from cases.mlp_relu_mse import ARTICLE_DIMS
from handgrad import measure
from handgrad.measure import SECOND_LOOKS, Measured
from handgrad.mutants import planted
from handgrad.verdict import FLOOR_ULPS, K_FLOAT64, K, judge, ulp

F32, F64 = torch.float32, torch.float64


def sides(truth, autograd, manual, dtype=F32):
    """One gradient ``g``: truth in float64, the two sides in ``dtype``."""
    t = torch.tensor(truth, dtype=F64)
    return ({"g": torch.tensor(manual, dtype=dtype)}, {"g": torch.tensor(autograd, dtype=dtype)},
            {"g": t})


def verdict(truth, autograd, manual, dtype=F32):
    manual_, autograd_, truth_ = sides(truth, autograd, manual, dtype)
    return judge("synthetic", manual_, autograd_, truth_)


def test_two_roundings_that_an_elementwise_tolerance_rejects_pass():
    """The AMD case: manual and autograd 4.7e-5 from the truth in different entries of a
    gradient whose scale is 175, so they differ by 9.4e-5 where the value is 0.32.
    ``assert_close``'s float32 default (atol 1e-5) rejects that; the verdict does not."""
    truth = [175.0, 0.32, -3.0]
    autograd, manual = [175.0, 0.32 + 4.7e-5, -3.0], [175.0, 0.32 - 4.7e-5, -3.0]
    m, a = torch.tensor(manual), torch.tensor(autograd)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(m, a)  # on purpose: the check the verdict replaces fails
    assert verdict(truth, autograd, manual).passed


@pytest.mark.parametrize(("times", "passes"), [(1.0, True), (1.9, True), (2.2, False)])
def test_manual_may_be_k_times_as_far_from_the_truth(times, passes):
    truth = [10.0, 1.0, -4.0]
    off = 1e-3  # far above the floor: FLOOR_ULPS ulps of 10 in float32 is 4.8e-6
    v = verdict(truth, [10.0, 1.0 + off, -4.0], [10.0, 1.0 - times * off, -4.0])
    assert K == 2
    assert v.passed is passes
    assert v.judgements[0].ratio == pytest.approx(times, rel=1e-2)  # the floor's share


def test_where_autograd_is_exact_the_floor_allows_a_few_ulps():
    scale = 8.0
    one_ulp = ulp(F32, scale)
    assert verdict([scale, 1.0], [scale, 1.0], [scale, 1.0 + one_ulp]).passed
    assert not verdict([scale, 1.0], [scale, 1.0], [scale, 1.0 + 2 * FLOOR_ULPS * one_ulp]).passed


def test_the_rule_asks_digits_only_of_entries_above_what_it_allows():
    """An entry whose truth is within what the rule allows would pass as 0: manual off
    there alone breaks the rule at entries it asks no digit of (``broke_noise_only``);
    off at an entry above that, it does not."""
    truth = [0.0, 1e-3, 1.0]
    at_zero = verdict(truth, truth, [0.5, 1e-3, 1.0]).judgements[0]
    assert at_zero.broke_noise_only
    at_one = verdict(truth, truth, [0.0, 1e-3, 1.5]).judgements[0]
    assert at_one.broke_max
    assert not at_one.broke_noise_only


def test_the_element_named_is_the_one_that_broke_the_rule():
    """Not the largest difference between manual and autograd: the largest manual error
    against the truth. Here autograd is off at index 0, manual at index 2."""
    v = verdict([1.0, 2.0, 3.0], [1.5, 2.0, 3.0], [1.0, 2.0, 4.25])
    (j,) = v.failures
    assert j.index == (2,)
    text = v.explain()
    assert "d_g: manual's error 1.25e+00 is" in text
    assert "autograd's own 5.00e-01 in float32" in text
    assert "(allowed: 2x)" in text
    assert "at index (2,): manual 4.25, autograd 3, truth 3" in text


def test_a_planted_error_is_located_with_all_three_values():
    case = BY_NAME["mlp_relu_mse"]
    inputs = case.inputs("cpu", F32, **case.small_dims)
    right, measured = case.manual(inputs), measure(case.reference, inputs)
    wrong = {**right, "w1": right["w1"].clone()}
    wrong["w1"][1, 2] += 0.5
    (j,) = measured.judge("planted", wrong).failures
    assert (j.name, j.index) == ("w1", (1, 2))
    assert j.manual_at == float(wrong["w1"][1, 2])
    assert j.autograd_at == float(measured.autograd["w1"][1, 2])
    assert j.truth_at == float(measured.truth["w1"][1, 2])
    assert f"manual {j.manual_at:.10g}, autograd {j.autograd_at:.10g}" in j.explain()


@pytest.mark.parametrize(("autograd", "truth", "manual", "passes"), [
    (float("nan"), float("nan"), float("inf"), True),  # inf for NaN: both say "undefined"
    (float("nan"), float("nan"), 0.0, False),  # a number where there is none
    (1.0, 1.0, float("nan"), False),  # NaN where autograd is finite
    (float("inf"), 7e4, 7e4, True),  # float16 overflow of autograd's, not of the truth
    (float("inf"), 3e4, 1.0, True),  # ... or as far off as a 0: autograd's inf is no nearer
    (float("inf"), 3e4, -4e4, False),  # ... but not further off than twice that
    (float("inf"), 65520.0, 65472.0, True),  # at float16's edge: rounding chose the side
    (32768.0, 81920.0, float("inf"), True),  # beyond float16: inf is the truth, rounded
    (32768.0, 81920.0, -float("inf"), False),  # ... of the truth's sign
])
def test_non_finite_entries(autograd, truth, manual, passes):
    dtype = torch.float16
    v = verdict([truth, 2.0], [autograd, 2.0], [manual, 2.0], dtype)
    assert v.passed is passes, v.explain()


def test_where_autograd_gave_up_the_other_entries_keep_their_bound():
    """Autograd's NaN at one entry widens what manual may be off there, nowhere else."""
    v = verdict([3e4, 2.0], [float("nan"), 2.0], [3e4, 5e4], torch.float16)
    assert not v.passed
    assert v.judgements[0].index == (1,), v.explain()


@pytest.mark.parametrize(("wide", "manual", "passes"), [
    (0.5, 0.5, True), (0.5, 1.5, False), (float("inf"), 0.5, False)])
def test_where_autograd_gave_up_its_run_with_float32s_range_sets_the_bound(wide, manual,
                                                                            passes):
    """Autograd's NaN where the truth is 1e-3, and 0.5 there in float16's precision with
    float32's range: float16's rounding takes it that far, so a hand 0.5 passes, 1.5 not.
    Where that run overflows too, it sets no bound of its own."""
    m, a, t = sides([1e-3, 2.0], [float("nan"), 2.0], [manual, 2.0], torch.float16)
    v = judge("", m, a, t, wide_range={"g": torch.tensor([wide, 2.0])})
    assert v.passed is passes, v.explain()


def test_a_wrong_dtype_shape_or_missing_gradient_fails_with_the_reason():
    a = {"g": torch.ones(2, 3)}
    t = {"g": torch.ones(2, 3, dtype=F64)}
    for manual, reason in (({"g": torch.ones(2, 3, dtype=F64)}, "manual's dtype is torch.float64"),
                           ({"g": torch.ones(3, 2)}, "manual's shape is (3, 2), autograd's (2, 3)"),
                           ({}, "missing")):
        v = judge("x", manual, a, t)
        assert not v.passed
        assert reason in v.explain()


def test_float64_measures_autograds_own_rounding_and_catches_1e_10():
    case = BY_NAME["mlp_relu_mse"]
    inputs = case.inputs()
    right, measured = case.manual(inputs), Measured(case.reference, inputs)
    for name, error in measured.errors.items():
        scale = float(measured.autograd[name].abs().max())
        assert error < 1e-13 * scale, name  # rounding: tiny
    assert sum(e > 0 for e in measured.errors.values()) >= 4  # and really measured
    assert measured.judge("right", right).passed
    for eps in (1e-10, 3e-8):  # 3e-8: one float32 constant inside a float64 derivation
        off = {k: g * (1 + eps) for k, g in right.items()}
        assert not measured.judge(f"relative {eps:g}", off).passed
    assert K_FLOAT64 == 2 * (K + 1)


def test_a_second_look_spares_a_right_gradient_that_autograd_beat_by_luck():
    """A row of equal logits: autograd's softmax is exactly 1/C there, and its gradient
    exact, while a closed form that rounds once more is not. At nearby logits autograd
    rounds like anyone; manual is within K times that, so it passes, on a second look."""
    case = BY_NAME["softmax_cross_entropy"]

    def exp_of_log_p(logits, target):  # p = exp(log_p): right, with one more rounding
        log_p = logits.log_softmax(-1)
        return {"logits": (log_p.exp() * target.sum(-1, keepdim=True) - target) / len(logits)}

    inputs = {"logits": torch.zeros(1, 8), "target": torch.full((1, 8), 0.1)}
    measured = measure(case.reference, inputs)
    assert measured.autograd["logits"].eq(measured.truth["logits"].float()).all()
    v = measured.judge("second look", planted(case, gradients=exp_of_log_p).manual(inputs))
    assert v.passed, v.explain()
    assert v.judgements[0].looks == 1 + SECOND_LOOKS


def article_is_same(a, b):
    """The article's check: one-sided (no abs) and with a fixed absolute tolerance."""
    return bool((a - b).max() < 1e-4)


def test_the_articles_check_accepts_what_the_verdict_rejects():
    case = BY_NAME["mlp_relu_mse"]
    inputs = case.inputs(**ARTICLE_DIMS)
    right, measured = case.manual(inputs), measure(case.reference, inputs)
    assert (measured.autograd["w2"] < 0).all(), "the demonstration needs d_w2 < 0 everywhere"
    doubled = {**right, "w2": 2 * right["w2"]}  # too negative everywhere: a - b < 0
    assert article_is_same(doubled["w2"], measured.autograd["w2"])
    assert [j.name for j in measured.judge("doubled", doubled).failures] == ["w2"]
    # The article checks x, w1, b2, w2 and b2 again, never b1: any d_b1 passes.
    wrong_b1 = {**right, "b1": right["b1"] + 100}
    assert all(article_is_same(wrong_b1[k], measured.autograd[k])
               for k in ("x", "w1", "b2", "w2", "b2"))
    assert [j.name for j in measured.judge("b1", wrong_b1).failures] == ["b1"]


@pytest.mark.parametrize("case_name", ["linear_xw", "mlp_relu_mse"])
def test_gradchecks_defaults_let_a_relative_1e3_through(case_name):
    """gradcheck (rtol 1e-3) passes a gradient 0.1 % off; the verdict does not."""
    case = BY_NAME[case_name]
    right = case.module.gradients
    off = planted(case, gradients=lambda **kw: {k: g * (1 + 1e-3) for k, g in right(**kw).items()})
    inputs = off.inputs(**off.small_dims)
    wrt = [inputs[k].requires_grad_() for k in off.wrt]
    assert torch.autograd.gradcheck(off.function(inputs, "manual"), wrt)
    assert not off.verdict(inputs).passed


def test_every_step_names_the_first_wrong_one_in_backward_order():
    """A mistake at ``d_l2`` spoils every gradient below it; the verdict leads with d_l2."""
    case = BY_NAME["mlp_relu_mse"]
    right = case.module.gradients

    def wrong_from_l2(**inputs):
        grads = right(**inputs)
        f, d_l2 = case.module.forward(**inputs), grads["l2"] * 1.1
        d_l1 = torch.where(f["l1"] <= 0, 0, d_l2)
        d_x, d_w1, d_b1 = case.module.linear_backward(inputs["x"], inputs["w1"], d_l1)
        return {**grads, "l2": d_l2, "l1": d_l1, "x": d_x, "w1": d_w1, "b1": d_b1}

    wrong = planted(case, gradients=wrong_from_l2)
    v = wrong.verdict(wrong.inputs(**wrong.small_dims), steps=True)
    assert [j.name for j in v.failures] == ["l2", "l1", "x", "w1", "b1"]
    assert "5 gradient(s) fail, the first (in the backward's order) d_l2" in v.explain()


def test_an_overflow_within_what_the_rule_allows_is_not_a_disagreement():
    """float16: the truth 60000, autograd 48000 (off by 12000), manual's sum 72016, so inf.
    Within 2 x 12000 of the truth, past 65504: allowed. The same inf against a truth of
    30000 and autograd's 29000 is not."""
    half = torch.float16
    inf = torch.tensor([float("inf")], dtype=half)
    passes = judge("", {"b": inf}, {"b": torch.tensor([48000.0], dtype=half)},
                   {"b": torch.tensor([60000.0], dtype=F64)})
    assert passes.passed, passes.explain()
    fails = judge("", {"b": inf}, {"b": torch.tensor([29000.0], dtype=half)},
                  {"b": torch.tensor([30000.0], dtype=F64)})
    assert "non-finite where autograd's is finite" in fails.judgements[0].problem
