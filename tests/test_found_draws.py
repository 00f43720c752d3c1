"""Draws hypothesis found where a right gradient once failed, built in code: at the edges
of float16's range and precision, where autograd gives NaN or inf and the hand gradient
does not, or the other way round."""

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


def test_where_autograd_gave_up_its_error_elsewhere_in_the_tensor_counts():
    """A float16 GPT: every channel of the token embeddings 1e-3 but one, the block's fc
    layer of 10s overflowing autograd's GELU backward to NaN from the block down, and a
    last layer norm that divides by a deviation of 0.06 from 10.06, which float16 rounds
    1.6 % off. ``d_wte`` sums the NaN row and the head's row, which autograd gets 9e-5 off;
    the hand gradient is 4e-5 off a truth of -3e-6 where autograd gave NaN. As far off as
    autograd elsewhere, it passes; that row four times over fails."""
    case = BY_NAME["tiny_gpt"]
    dims = {**dict.fromkeys(case.dims, 1), "V": 2, "C": 32}
    inputs = {k: torch.zeros(case.shape(k, dims), dtype=torch.float16) for k in case.shapes}
    for name, value in (("wte", 1e-3), ("ln1_beta", 1e-3), ("w_qkv", 2000), ("w_proj", 1e-3),
                        ("w_fc", 10), ("b_fc_proj", 10), ("lnf_gamma", 1e-3)):
        inputs[name] += value
    inputs["wte"][0, 0] = inputs["w_proj"][..., 6] = 0
    inputs["ln2_gamma"][..., 6] = 3
    inputs |= {"idx": torch.tensor([[0]]), "target": torch.tensor([[0]])}
    measured = measure(case.reference, inputs)
    assert measured.autograd["wte"][0].isnan().all()
    assert measured.truth["wte"].isfinite().all()
    verdict = case.verdict(inputs, draw="autograd's GELU gave up")
    assert verdict.passed, verdict.explain()
    right = case.module.gradients
    four = planted(case, gradients=lambda **kw: {
        **right(**kw), "wte": right(**kw)["wte"] * torch.tensor([[4.0], [1.0]])})
    assert [j.name for j in four.verdict(inputs).failures] == ["wte"]
