"""The corpus beyond the generic checks: each norm on a constant row, and no autograd in
the algebra.

A row whose entries are all equal has variance 0: ``xhat`` is 0 there (``rstd`` is
``1/sqrt(eps)``), and where ``weight * grad_output`` is constant along the row too, the
exact gradient of the row is 0 (the mean path takes out all there is). Low precision
rounds the mean to a neighbour of the entries, so a correct backward gives rounding noise
scaled by ``rstd`` there, and autograd, through ``rstd``'s derivative ``-rstd^3 / 2``, may
overflow to NaN. The draw: the row ``1.8555`` five times, ``weight`` and the row's
grad_output ``0.001``.
"""

import math
import sys
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from corpus import BY_NAME, CASES

from handgrad import measure, opinions
from handgrad.generated import generated_holds
from handgrad.judgement import Excused

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_contracts import autograd_uses

# case: (the normalised input, its normalised axis, the scale, the grad_output)
NORMS = {
    "llmc_layer_norm": ("inp", -1, "weight", "dout"),
    "layer_norm_f32acc": ("x", -1, "gamma", "dy"),
    "karpathy_batch_norm": ("hprebn", 0, "bngain", "dhpreact"),
    "rms_norm": ("x", -1, "weight", "dy"),
}
ROW, SMALL = 1.8555, 1e-3


def constant_row(case, device, dtype, zero: bool):
    """The case's inputs with the first row (along the normalised axis) constant, and that
    row's index; with ``zero``, the scale and that row's grad_output 0.001, where the exact
    gradient is 0."""
    name, axis, scale, grad_output = NORMS[case.name]
    symbol = case.shapes[name].split()[axis]
    inputs = case.inputs(device, dtype, seed=7, **{symbol: 5})
    x = inputs[name]
    first = (slice(None), 0) if axis == 0 else (0,) * (x.dim() - 1)
    x[first] = ROW
    if zero:
        inputs[scale].fill_(SMALL)
        inputs[grad_output][first] = SMALL
    return inputs, first


@pytest.mark.parametrize("zero", [False, True], ids=["constant row", "exact gradient 0"])
@pytest.mark.parametrize("name", list(NORMS))
def test_a_norm_over_a_constant_row(name, zero, device, dtype):
    case = BY_NAME[name]
    for form in case.forms:
        inputs, first = constant_row(case, device, dtype, zero)
        assert inputs[NORMS[name][0]][first].unique().numel() == 1, "the row is not constant"
        case.verdict(inputs, form, draw="a constant row").check()


def test_the_corpus_uses_no_autograd():
    files = sorted(Path(__file__).parent.glob("*.py"))
    algebra = [f for f in files if f.stem in {case.module.__name__ for case in CASES}]
    assert len(algebra) == len(CASES)
    assert [hit for f in algebra for hit in autograd_uses(f)] == []


def test_a_right_closed_form_that_cancels_is_less_accurate_not_wrong():
    """cs231n's ``probs - onehot`` on logits ``[0, -16.12]``: the target's ``p - 1`` cancels
    at 1's scale, so float32 gives -5.96e-8 where the truth is -4.99e-8, while autograd,
    through the row max's gradient, gets the other class's ``p`` exactly. Its float64
    error, 4.7e-17, still fails the float64 rule (autograd is exact by structure), but it
    is 2e8 times smaller than float32's: a rounding error, as the failure says."""
    case = BY_NAME["ce_max_shift"]
    draw = {"logits": torch.tensor([[0.0, -16.1207], [0.0, -19.0710]]),
            "target": torch.tensor([0, 0])}
    verdict = case.verdict(draw)
    assert [j.name for j in verdict.failures] == ["logits"]
    assert "less accurate than autograd in float32 (right in float64: its error there" in (
        verdict.explain())
    assert not case.verdict({**draw, "logits": draw["logits"].double()}).passed


def test_a_gradient_below_the_normal_range_is_judged_to_its_edge():
    """RMSNorm's cubed form in float32 at x = 1e-20, dy = 1e-25: ``dy x`` = 1e-45 rounds to
    the smallest subnormal, 1.4e-45, and ``rstd`` = 1000 scales it to a ``d_weight`` of
    1.4e-42 where the truth is 1.0e-42 and autograd, through ``xhat``, 1.0005e-42. The whole
    gradient lies below the smallest normal number, so it passes within that; one as far
    off as 1.5 times that number still fails."""
    case, form = BY_NAME["rms_norm"], "gradients_cubed"
    draw = {"x": torch.tensor([[1e-20]]), "weight": torch.ones(1), "dy": torch.tensor([[1e-25]])}
    d_weight = case.manual(draw, form)["weight"]
    assert float(d_weight) == pytest.approx(1.4e-42, rel=0.01)
    verdict = case.verdict(draw, form)
    assert verdict.passed, verdict.explain()
    right = case.manual(draw, form)
    off = {**right, "weight": d_weight + torch.finfo(torch.float32).smallest_normal * 1.5}
    assert [j.name for j in measure(case.reference, draw).judge("off", off).failures] == [
        "weight"]


def test_an_intermediate_below_the_normal_range_is_judged_to_its_edge():
    """Karpathy's fused batch norm in float32 on a gain of 1.1755e-41 (hypothesis's draw,
    131 rows): ``bngain bnvar_inv / n`` is 2.8e-41, a subnormal kept to five digits, and
    ``n dhpreact`` scales it back to a gradient of 3.7e-36, 1.2e-40 off where autograd,
    multiplying before it divides, is 5.6e-43 off: 82 times, on errors far under 1.2e-38,
    where float32 is judged to the normal range's edge. 1.5 times that edge still fails."""
    case = BY_NAME["karpathy_batch_norm"]
    draw = {"hprebn": torch.zeros(131, 2), "bngain": torch.full((1, 2), 1.1755e-41),
            "bnbias": torch.zeros(1, 2), "dhpreact": torch.zeros(131, 2)}
    draw["dhpreact"][-1] = 1000.0
    measured = measure(case.reference, draw)
    right = case.manual(draw, "gradients")
    off = (right["hprebn"].double() - measured.truth["hprebn"]).abs().max()
    assert 1e-41 < off < torch.finfo(torch.float32).smallest_normal
    assert measured.judge("right", right).passed
    edge = torch.finfo(torch.float32).smallest_normal * 1.5
    wrong = {**right, "hprebn": right["hprebn"] + edge}
    assert [j.name for j in measured.judge("off", wrong).failures] == ["hprebn"]


def _overflowing(name: str, form: str):
    """A float16 draw (after the dev profile's) on which the form declared
    ``full_precision_only`` overflows where autograd does not."""
    def half(rows):
        return torch.tensor(rows, dtype=torch.float16)

    if name == "karpathy_batch_norm":  # var 7e-4: bngain * bnvar_inv = 2000 * 37.5
        return {"hprebn": half([[0.0] * 4, [0.0374] * 4]), "bngain": half([[2000.0] * 4]),
                "bnbias": half([[0.0] * 4]), "dhpreact": half([[0.0] * 4] * 2)}
    if form == "gradients_cubed":  # x^2 = 1e6 overflows: rstd = 0, and dy x rstd = inf * 0
        return {"x": half([[1000.0]]), "weight": half([0.0]), "dy": half([[1000.0]])}
    if name == "rms_norm":  # seed 22: g = -50144, xhat = 1.41, g xhat = -70860
        return {"x": half([[1.0957, 0.0]]), "weight": half([-12.5390625, 3.052734375]),
                "dy": half([[4000.0, 4000.0]])}
    return {"x": half([[0.0] * 5] * 4), "w1": half([[1000.0] * 2] * 5),  # w1 w2: 2e6
            "b1": half([1e-3] * 2), "w2": half([[1000.0]] * 2), "b2": half([0.0]),
            "dout": half([[0.0]] * 4)}


@pytest.mark.parametrize(("name", "form"), [(case.name, form) for case in CASES
                                            for form in case.full_precision_only])
def test_each_opt_out_holds_where_it_is_used(name, form):
    """The reason each opted-out form gives holds: on its float16 draw it overflows where
    autograd does not, right in float64, so the failure is excused, as a drawn one is (not
    a warning); in float32 the same draw passes."""
    case = BY_NAME[name]
    draw = _overflowing(name, form)
    verdicts = [case.verdict(draw, form, draw="overflowing")]
    assert verdicts[0].only_out_of_range, verdicts[0].explain()
    excuse = "overflowing where autograd does not, right in float64"
    for holds in (lambda: opinions.all_hold(verdicts, case, form, torch.float16),
                  lambda: generated_holds(case, form, "cpu", torch.float16, draw)):
        with pytest.raises(Excused, match=excuse):
            holds()
    wide = {k: t.float() for k, t in draw.items()}
    assert case.verdict(wide, form).passed


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
def test_a_truth_that_cancels_in_float64_allows_its_own_rounding(dtype):
    """llm.c's GELU at x = -7.5, dout 1e-3: float64's ``1 - tanh^2`` is 0 (tanh rounds to -1),
    so the truth and autograd give 0, where the exact gradient is -5.5e-20 and llm.c's
    ``1 / cosh^2`` gets it. Under random rounding the float64 truth moves by 1.1e-17 there:
    the hand gradient is within that, and one 1e-15 off is not."""
    case = BY_NAME["llmc_gelu"]
    draw = {"inp": torch.tensor([[-7.5]], dtype=dtype), "dout": torch.tensor([[1e-3]], dtype=dtype)}
    d_inp = case.manual(draw)["inp"]
    assert float(d_inp) == pytest.approx(-5.5e-20, rel=0.01)
    assert float(measure(case.reference, draw).truth["inp"]) == 0.0
    verdict = case.verdict(draw)
    assert verdict.passed, verdict.explain()
    assert not measure(case.reference, draw).judge("off", {"inp": d_inp - 1e-15}).passed


@pytest.mark.parametrize(("rows", "d", "o", "dout"), [(2048, 1, 1, 1e-3), (513, 13, 2, 7.5e-4)])
def test_a_bias_gradient_summed_in_turn_passes_in_float64(rows, d, o, dout):
    """Caffe's ``d_b2 = dout^T 1`` over 2048 rows of 1e-3 in float64: the gemv adds the rows
    one after another and lands 1.1e-13 from the exact 2.048, 60 times further than
    torch's blocked sum. Autograd's runs under random rounding take sums so too: it passes,
    and a ``d_b2`` ten times as far off still fails. Over 513 rows of 7.5e-4 (the dev
    profile's seed 20), 4.7e-15 off, no run took autograd's sum in turn while a coin per
    sum decided it (21 times autograd's spread): half the runs now take every sum so."""
    case, f64 = BY_NAME["mlp_caffe"], torch.float64
    draw = {"x": torch.zeros(rows, d, dtype=f64), "w1": torch.zeros(d, 1, dtype=f64),
            "b1": torch.zeros(1, dtype=f64), "w2": torch.zeros(1, o, dtype=f64),
            "b2": torch.zeros(o, dtype=f64), "dout": torch.full((rows, o), dout, dtype=f64)}
    verdict = case.verdict(draw)
    assert verdict.passed, verdict.explain()
    right = case.manual(draw)
    in_turn = abs(float(draw["dout"][:, 0].cumsum(0)[-1]) - float(rows * Fraction(dout)))
    off = {**right, "b2": right["b2"] + 10 * in_turn}
    assert [j.name for j in measure(case.reference, draw).judge("off", off).failures] == ["b2"]


def test_a_folded_product_summed_in_turn_passes_in_float64():
    """Caffe's folded ``d_x`` in float64 (the dev profile's seed 21): 512 products of weights
    ``0.001 * 6.07e-15``, each rounded, then summed against ``dout`` = 5.078125, where
    autograd sums 512 exact ``dout w2`` first. Its 2.1e-28 from autograd was 7.1 times
    autograd's spread while random rounding only split a matmul in two blocks; runs that
    take a small matmul one term after another, as a gemv does, spread 1.9 times wider,
    and it passes at 4.1 times. A ``d_x`` 2e-27 off (40 times that spread) still fails."""
    case, f64 = BY_NAME["mlp_caffe"], torch.float64
    draw = {"x": torch.zeros(3, 4, dtype=f64), "w1": torch.full((4, 1), 1e-3, dtype=f64),
            "b1": torch.full((1,), 1e-3, dtype=f64),
            "w2": torch.full((1, 512), 6.070588031213913e-15, dtype=f64),
            "b2": torch.zeros(512, dtype=f64), "dout": torch.full((3, 512), 5.078125, dtype=f64)}
    verdict = case.verdict(draw, "gradients_folded")
    assert verdict.passed, verdict.explain()
    right = case.manual(draw, "gradients_folded")
    off = {**right, "x": right["x"] + 2e-27}
    assert [j.name for j in measure(case.reference, draw).judge("off", off).failures] == ["x"]


def test_a_bias_gradient_summed_in_turn_passes_in_float32():
    """A float32 kernel that adds 4096 rows one after another (inductor's reduction over
    rows, a plain loop) lands 6 to 19 ulps of the scale from the exact ``d_b2``, 5 to 14
    times torch's blocked sum, and failed by that much. Autograd's float32 sums under random
    rounding are taken in turn too, in half the runs (``rounding.in_turn_float32``): it
    passes. A ``d_b2`` 200 ulps off, past twice autograd's worst under those runs (37 ulps
    here) and the floor, still fails. Judged as a compiled kernel is, with no rerun of the
    hand code to look at."""
    case, gen = BY_NAME["mlp_caffe"], torch.Generator().manual_seed(0)
    sizes = {"x": (4096, 4), "w1": (4, 8), "b1": (8,), "w2": (8, 64), "b2": (64,),
             "dout": (4096, 64)}
    draw = {k: torch.randn(shape, generator=gen) for k, shape in sizes.items()}
    draw["dout"] *= 1e-2
    in_turn = torch.zeros(64)
    for row in draw["dout"]:
        in_turn = in_turn + row
    right, measured = case.manual(draw), measure(case.reference, draw)
    verdict = measured.judge("d_b2 in turn", {**right, "b2": in_turn})
    assert verdict.passed, verdict.explain()
    ulp = torch.finfo(torch.float32).eps * float(draw["dout"].double().sum(0).abs().max())
    off = {**right, "b2": right["b2"] + 200 * ulp}
    assert [j.name for j in measured.judge("off", off).failures] == ["b2"]


def test_a_saturated_softmax_row_through_att_times_1_minus_att_is_less_accurate():
    """llm.c's attention in float64, T = 2, one head of size 1: the second row's scores 0 and
    23 give ``att = 1 - 1e-10``, and llm.c's Jacobian takes ``1 - att`` from that rounded
    value. Its ``d_q`` there is 6e-8 of itself from the exact value, ``23 att0 att1 (v1 - v0)``
    in a stable float64 form, where autograd, whose row max's path never forms ``1 - att``,
    is within an ulp. The verdict rejects it, as it rejects the zoo's ``1 - p`` taken by
    subtraction: right algebra, less accurate than autograd. So the dev profile's float64
    failure arose (seed 7: inputs of 10, heads of 1024, ``d_q`` 1.1e-15 off by mpmath where
    autograd was 3e-22 off)."""
    case, f64 = BY_NAME["llmc_attention"], torch.float64
    inp = torch.zeros(1, 2, 3, 1, 1, dtype=f64)
    inp[0, :, 0, 0, 0] = 1.0  # q
    inp[0, 1, 1, 0, 0] = 23.0  # k
    inp[0, 1, 2, 0, 0] = 1000.0  # v
    draw = {"inp": inp, "dout": torch.ones(1, 2, 1, 1, dtype=f64)}
    a0 = math.exp(-23) / (1 + math.exp(-23))
    exact = 23 * a0 * (1 - a0) * 1000.0
    d_q = float(case.manual(draw)["inp"][0, 1, 0, 0, 0])
    by_autograd = float(measure(case.reference, draw).autograd["inp"][0, 1, 0, 0, 0])
    ulp = math.ulp(exact)
    assert abs(by_autograd - exact) <= ulp
    assert abs(d_q - exact) > 1e6 * ulp
    assert [j.name for j in case.verdict(draw).failures] == ["inp"]
