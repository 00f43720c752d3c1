"""Entries the rule asks no digit of: where the truth is within what the ratio rule allows,
a 0 would pass, and right forms put rounding noise there at the size of their own terms.
A tensor off only there is judged by its algebra (``handgrad.measure``): right in float64
and within ``K eps^-1/2`` times autograd's error."""

import pytest
import torch
from corpus import BY_NAME

from handgrad import measure
from handgrad.measure import noise_ratio
from handgrad.mutants import planted
from handgrad.verdict import K


def test_a_gradient_of_rounding_noise_is_judged_by_its_algebra():
    """Karpathy's fused batch norm in bfloat16 on a constant column (300 rows of 1.8555, gain
    and grad_output 1): the exact gradient is 0, autograd's bfloat16 gradient is noise of
    42 and the fused line's of 103, 2.4 times. The rule asks no digit of any entry, so the
    form passes on being right in float64 and within 23 times autograd's noise; with the mean
    path's sign flipped (``+ sum d``), 136 off (3.2 times), it fails as wrong: in float64
    it is off by 632, twice the terms' 316. Every sum here is of equal terms, exact in
    float32 in any order, so these figures are not this CPU's alone."""
    case = BY_NAME["karpathy_batch_norm"]
    column = {"hprebn": 1.8555, "bngain": 1.0, "bnbias": 0.0, "dhpreact": 1.0}
    draw = {k: torch.full(case.shape(k, {"N": 300, "C": 1}), v, dtype=torch.bfloat16)
            for k, v in column.items()}
    judged = case.verdict(draw).judgements[0]
    assert judged.passed
    assert "off only where the rule asks no digit" in judged.how
    assert 2 < judged.ratio < 23, judged.explain()
    right = case.module.gradients

    def mean_path_flipped(hprebn, bngain, bnbias, dhpreact):  # - sum d made + sum d
        rstd = case.module.forward(hprebn, bngain, bnbias)["bnvar_inv"]
        got = right(hprebn, bngain, bnbias, dhpreact)
        n = hprebn.shape[0]
        return {**got, "hprebn": got["hprebn"] + 2 * bngain * rstd / n * dhpreact.sum(0)}
    verdict = planted(case, gradients=mean_path_flipped).verdict(draw)
    assert [j.name for j in verdict.failures] == ["hprebn"]
    assert 2 < verdict.failures[0].ratio < 23
    assert verdict.diagnosed.failures[0].diagnosis.startswith("wrong")


def equal_scores(dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """llm.c's attention on one head of size 4 over 6 tokens, every input 4000 and every
    grad_output 20 (the dev profile's seed 16): every score in a row is equal, and ``d_q``
    and ``d_k`` are 0 in truth and by autograd's path through the row max, while ``d_v``
    is 20 times a harmonic sum, up to 49."""
    return {"inp": torch.full((1, 6, 3, 1, 4), 4000.0, dtype=dtype),
            "dout": torch.full((1, 6, 1, 4), 20.0, dtype=dtype)}


def noisier(where: int, size: float, shrinks: bool = True):
    """llm.c's attention with ``d_inp[:, :, where]`` (0: q, 2: v) off by ``size`` where it
    computes in float32 (half inputs), by ``size`` times float64's eps over float32's in
    float64: an error that shrinks with precision, as rounding does; without ``shrinks``,
    by ``size`` in every dtype: a mistake."""
    right = BY_NAME["llmc_attention"].module.gradients

    def gradients(inp, dout):
        got = right(inp, dout)["inp"].clone()
        inside = torch.float32 if inp.dtype != torch.float64 or not shrinks else inp.dtype
        got[:, :, where] += size * torch.finfo(inside).eps / torch.finfo(torch.float32).eps
        return {"inp": got}
    return gradients


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def test_noise_where_the_rule_asks_no_digit_is_judged_by_the_algebra(dtype):
    """On the equal-score draw, llm.c's float32 Jacobian sum leaves noise of about 47 on
    ``d_q`` where autograd's largest error over the looks is about 10 (4.0 and 3.8 times,
    float16 and bfloat16): it passes. So does a form off at ``d_q`` by the geometric middle
    of the rule's ``K`` and ``K eps^-1/2`` times autograd's error, 11 and 6.7 times; the
    same at ``d_v``, whose entries the rule asks digits of, fails as less accurate, and the
    same at ``d_q`` in float64 too fails as wrong."""
    case, draw = BY_NAME["llmc_attention"], equal_scores(dtype)
    noise = noise_ratio(dtype)
    verdict = case.verdict(draw)
    assert verdict.passed, verdict.explain()
    size = (K * noise) ** 0.5 * measure(case.reference, draw).rounded_errors()["inp"]
    noisy = planted(case, gradients=noisier(0, size)).verdict(draw).judgements[0]
    assert noisy.passed, noisy.explain()
    assert "off only where the rule asks no digit" in noisy.how
    assert K < noisy.ratio < noise
    at_v = planted(case, gradients=noisier(2, size)).verdict(draw).diagnosed.judgements[0]
    assert not at_v.passed
    assert at_v.ratio < noise
    assert at_v.diagnosis.startswith("less accurate")
    wrong = planted(case, gradients=noisier(0, size, shrinks=False)).verdict(draw).diagnosed
    assert wrong.failures[0].diagnosis.startswith("wrong")


def constant_column(dhpreact: float) -> dict[str, torch.Tensor]:
    """Karpathy's batch norm of one bfloat16 column, 27.5 in 28 rows, bngain 1e-3, bnbias 0,
    and ``dhpreact`` in every row: the exact d_hprebn is 0."""
    bf16 = torch.bfloat16
    return {"hprebn": torch.full((28, 1), 27.5, dtype=bf16),
            "bngain": torch.full((1, 1), 1e-3, dtype=bf16),
            "bnbias": torch.zeros(1, 1, dtype=bf16),
            "dhpreact": torch.full((28, 1), dhpreact, dtype=bf16)}


def test_a_gradient_that_is_all_rounding_noise_is_judged_by_its_largest_entry():
    """Karpathy's batch norm of a constant bfloat16 column, 27.5 in 28 rows, bngain and
    dhpreact 1e-3: the exact d_hprebn is 0 (5e-20 in float64), and both sides give rounding
    noise, autograd 3e-6 on average and the fused ``n d - sum d`` 7.9e-6 at every entry.
    The mean rule has no truth to see there; the largest entry is within the rule, and a
    d_hprebn with 1e-4 added is not."""
    case, draw = BY_NAME["karpathy_batch_norm"], constant_column(1e-3)
    verdict = case.verdict(draw)
    assert verdict.passed, verdict.explain()
    right = case.manual(draw)
    off = {**right, "hprebn": right["hprebn"] + 1e-4}
    assert [j.name for j in measure(case.reference, draw).judge("off", off).failures] == [
        "hprebn"]


def test_where_a_later_look_finds_only_noise_the_mean_rule_stays_off():
    """The same column with dhpreact 0.1: autograd is exactly 0 here and 3.9e-4 off at nearby
    inputs, where the truth (7e-18) stands nowhere above the ratio rule's allowance, so the
    mean rule judges no entry. The last look once judged the mean anyway, against
    autograd's mean of 0 from the first look (5.4e16 times). Only the largest entry breaks
    the ratio rule, 2.06 times, on noise around an exact 0: the tensor passes as noise."""
    case, draw = BY_NAME["karpathy_batch_norm"], constant_column(0.1)
    judged = {j.name: j for j in case.verdict(draw).judgements}["hprebn"]
    assert judged.mean_k == 0
    assert not judged.broke_mean
    assert judged.broke_max
    assert judged.passed
