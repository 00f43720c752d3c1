"""Draws hypothesis found where a right gradient once failed, built in code: at the edges
of float16's range and precision, where autograd gives NaN or inf and the hand gradient
does not, or the other way round."""

import pytest
import torch

from cases import BY_NAME
from handgrad import measure
from handgrad.mutants import planted

F64 = torch.float64


def test_where_float16_cannot_hold_the_forward_autograds_nan_sets_no_target():
    """A GPT block hypothesis found: the second layer norm gets ``[1000, 0]``, whose
    variance, 250000, overflows float16, so the row normalises to 0. Autograd's GELU then
    gives 0 * inf = NaN in ``d_ln2_beta``; the hand gradient stays finite, the gradient of
    what float16 computed, -1.0e-3 against a float64 truth of 1.7e-4. That entry is not
    judged; a hand gradient that is NaN where autograd's is finite still fails."""
    case = BY_NAME["gpt_block"]
    dims = {**dict.fromkeys(case.dims, 1), "C": 2, "F": 32}
    inputs = {k: torch.zeros(case.shape(k, dims), dtype=F64) for k in case.shapes}
    inputs["b_qkv"] += 1
    inputs["w_proj"][..., 0] = 1000
    inputs["ln2_gamma"][0], inputs["ln2_beta"][1] = 0.001, 0.2
    inputs["w_fc"] -= 1000
    inputs["w_fc"][1, 0] = 0
    inputs["w_fc_proj"] += 0.001
    inputs["v"] += 0.001
    half = {k: t.half() for k, t in inputs.items()}
    assert case.holds(inputs)
    assert case.holds({k: t.float() for k, t in inputs.items()})
    assert not case.holds(half)
    measured = measure(case.reference, half)
    assert measured.autograd["ln2_beta"].isnan().any()
    verdict = case.verdict(half)
    assert verdict.passed, verdict.explain()
    right = case.module.gradients
    nan_b_fc_proj = planted(case, gradients=lambda **kw: {
        **right(**kw), "b_fc_proj": right(**kw)["b_fc_proj"] * torch.nan})
    assert [j.name for j in nan_b_fc_proj.verdict(half).failures] == ["b_fc_proj"]


def test_a_nan_that_autograd_reaches_too_under_random_rounding_is_not_a_disagreement():
    """float16 GPT block: d_ln1 is 60000 in truth, 48000 by autograd and 72016, so inf, by
    hand (a layer norm's cancellation leaves both 20 % off); times ln1's gamma of 0 the
    hand chain gives NaN from there down, d_x among it. Autograd, its roundings drawn at
    random, overflows there too in some runs: which way the rounding went decided it."""
    case = BY_NAME["gpt_block"]
    dims = {**dict.fromkeys(case.dims, 1), "F": 8}
    inputs = {k: torch.zeros(case.shape(k, dims), dtype=torch.float16) for k in case.shapes}
    inputs["w_qkv"] += 3000
    inputs["w_proj"] += 2
    inputs["ln2_gamma"] += 35
    inputs["ln2_beta"] += 0.0999755859375
    inputs["w_fc"][0] = torch.tensor([3.66796875, 3.265625, 3.66796875, 3.66796875, 2.4296875,
                                      3.66796875, 3.66796875, 3.66796875])
    inputs["b_fc"][0] = 1
    inputs["w_fc_proj"][:5, 0] = torch.tensor([0.046875, 3.9765625, -2.296875, 0.0, -2.046875])
    inputs["v"] += 10
    right = case.manual(inputs)
    measured = measure(case.reference, inputs)
    assert right["x"].isnan().all()
    assert measured.autograd["x"].isfinite().all()
    verdict = measured.judge("overflowed by hand", right)
    assert verdict.passed, verdict.explain()
    assert measured.rounded_non_finite["x"].all()


@pytest.mark.parametrize(("w_qkv", "w_proj", "b_fc_proj", "name"), [
    (1000, 0.1, 0, "ln1_beta"),  # 32 subnormals cancel to 3e-8: both sides 6e-5 off
    (2000, 1e-3, 10, "wte"),  # the last layer norm's deviation 1.6 % off: both 9e-5 off
])
def test_where_autograd_gave_up_float16s_rounding_alone_sets_the_bound(w_qkv, w_proj,
                                                                       b_fc_proj, name):
    """Float16 GPTs whose block's fc layer of 10s overflows autograd's GELU backward to NaN,
    from the block down. The hand gradient is finite there, far from the truth by its size:
    ``d_ln1_beta`` sums 32 float16 subnormals that cancel to 3e-8, and came out 6e-5. Run
    in float16's precision with float32's range (``WideRange``), autograd comes out where
    the hand gradient does, so it passes; that row four times over fails."""
    case = BY_NAME["tiny_gpt"]
    dims = {**dict.fromkeys(case.dims, 1), "V": 2, "C": 32}
    inputs = {k: torch.zeros(case.shape(k, dims), dtype=torch.float16) for k in case.shapes}
    for key, value in (("wte", 1e-3), ("ln1_beta", 1e-3), ("w_qkv", w_qkv), ("w_proj", w_proj),
                       ("w_fc", 10), ("b_fc_proj", b_fc_proj), ("lnf_gamma", 1e-3)):
        inputs[key] += value
    inputs["wte"][0, 0] = inputs["w_proj"][..., 6] = 0
    inputs["ln2_gamma"][..., 6] = 3
    inputs |= {"idx": torch.tensor([[0]]), "target": torch.tensor([[0]])}
    measured = measure(case.reference, inputs)
    assert measured.autograd[name][0].isnan().all()
    assert measured.truth[name].isfinite().all()
    verdict = case.verdict(inputs, draw="autograd's GELU gave up")
    assert verdict.passed, verdict.explain()

    def four_times(**kw):  # the row where autograd gave NaN
        right = case.module.gradients(**kw)
        return {**right, name: torch.cat([4 * right[name][:1], right[name][1:]])}
    failed = {j.name: j for j in planted(case, gradients=four_times).verdict(inputs).failures}
    assert "where autograd gave nan" in failed[name].problem


def test_where_autograd_gave_up_on_a_constant_column_nearby_inputs_set_the_bound():
    """Batch norm's fused form hypothesis found: 2057 zeros in one column, ``gamma`` 1000,
    ``v`` 0.001, float16. ``gamma rstd`` (3.2e5) overflows float16, so autograd's ``d_x`` is
    -inf, where the truth is 0. With float32's range autograd's ``v - mean(v)`` is an
    exact 0 here, but the fused ``N v - sum(v)`` leaves 3.8e-5, rounding of terms of 0.3.
    As for any entry, autograd's error is looked at again over nearby inputs, where no
    exactness of structure survives: about 0.2 there, so 3.8e-5 passes; 1.0 does not."""
    case = BY_NAME["batch_norm"]
    n = 2057
    inputs = {"x": torch.zeros(n, 1), "gamma": torch.tensor([1000.0]), "beta": torch.zeros(1),
              "v": torch.full((n, 1), 1e-3)}
    inputs = {k: t.half() for k, t in inputs.items()}
    measured = measure(case.reference, inputs)
    assert measured.autograd["x"].isinf().all()
    assert measured.truth["x"].abs().max() < 1e-13  # 0, but for float64's own rounding
    fused = case.module.gradients_fused(**inputs)["x"]
    assert fused.abs().min() > 0  # the fused form's rounding, where autograd's range gives 0
    verdict = case.verdict(inputs, "gradients_fused", draw="a constant column")
    assert verdict.passed, verdict.explain()
    off = planted(case, gradients_fused=lambda **kw: {
        **case.module.gradients_fused(**kw), "x": torch.full_like(kw["x"], 1.0)})
    failed = off.verdict(inputs, "gradients_fused").failures
    assert [j.name for j in failed] == ["x"]
    assert "(over these and nearby inputs)" in failed[0].problem
