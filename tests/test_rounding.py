"""Random rounding (``handgrad.rounding``) and the looks of the verdict that use it.

The two GPT draws below are ones hypothesis found: one token embedding of 1e-3 among a
thousand zeros, every other weight 0. Their gradients of ``lnf_beta`` are about 1e-6,
summed from terms of 1e-3 through a softmax whose row sum rounds the same way at every
nearby input, so only re-rolling each rounding shows how far autograd can be off.
"""

from fractions import Fraction

import pytest
import torch

from cases import BY_NAME
from handgrad.measure import ROUNDINGS, measure
from handgrad.mutants import planted
from handgrad.rounding import RandomRounding, in_turn_float32, reordered, stochastic_round
from handgrad.wide_range import in_precision

F32, F64 = torch.float32, torch.float64
aten = torch.ops.aten
GPT = BY_NAME["tiny_gpt"]
ATTENTION = BY_NAME["causal_self_attention"]


def test_stochastic_rounding_picks_a_neighbour_as_often_as_it_is_near():
    exact = torch.full((20000,), 1 / 3, dtype=F64)
    rounded = stochastic_round(exact, F32, torch.Generator().manual_seed(0)).to(F64)
    near = torch.tensor(1 / 3, dtype=F32)  # round-to-nearest's choice, above 1/3
    far = torch.nextafter(near, torch.tensor(0.0)).to(F64)
    near = near.to(F64)
    assert far < 1 / 3 < near
    assert set(rounded.unique().tolist()) == {far.item(), near.item()}
    share = (rounded == far).double().mean().item()
    expected = (near.item() - 1 / 3) / (near - far).item()
    assert abs(share - expected) < 0.02, (share, expected)  # 6 standard errors of 20000 draws


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def test_in_precision_rounds_as_the_dtype_does_and_past_its_range_keeps_going(dtype):
    """Inside the dtype's range, ``in_precision`` is torch's own conversion (ties to even,
    subnormals); past it, where the conversion gives inf, the value stays finite and off by
    at most half the dtype's relative spacing."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(50000, generator=gen) * torch.logspace(-9, 38, 50000).flip(0)
    halfway = x.to(dtype).to(F32) * (1 + torch.finfo(dtype).eps / 2)  # ties
    x = torch.cat([x, halfway, torch.tensor([0.0, -0.0, torch.inf, -torch.inf])])
    got, cast = in_precision(x, dtype), x.to(dtype).to(F32)
    held = cast.isfinite() | ~x.isfinite()
    assert torch.equal(got[held], cast[held])
    beyond = x[~held].double()
    assert (beyond.numel() > 100) == (dtype == torch.float16)  # bfloat16 has float32's range
    assert got[~held].isfinite().all()
    assert ((got[~held].double() - beyond).abs() <= beyond.abs() * torch.finfo(dtype).eps / 2
            ).all()


def test_random_rounding_draws_nothing_for_uninitialised_memory():
    """``empty_like`` inside the mode: its memory is whatever was there, and drawing a
    rounding for it made the draws of one seed depend on that garbage (two runs differed)."""
    x = torch.zeros(4096, dtype=F32)
    with RandomRounding(7) as mode:
        for _ in range(3):
            torch.full((4096,), torch.pi, dtype=F64).sin_()  # garbage for the next to find
            before = mode.generator.get_state()
            torch.empty_like(x)
            assert torch.equal(mode.generator.get_state(), before)


def test_random_rounding_keeps_exact_results_and_rerolls_the_rest():
    x = torch.linspace(0.1, 2.0, 64, dtype=F32)
    results = []
    for seed in range(4):
        with RandomRounding(seed):
            assert torch.equal(x - x, torch.zeros_like(x))  # exact: no rounding to draw
            assert torch.equal(x.amax(), x[-1])
            results.append(x.exp() / 3)
    exact = x.to(F64).exp() / 3
    for r in results:
        assert ((r.to(F64) - exact).abs() <= 2 * torch.finfo(F32).eps * exact).all()
    assert not all(torch.equal(results[0], r) for r in results[1:]), "nothing was re-rolled"


def test_random_rounding_moves_float64_by_one_ulp_at_most_and_leaves_views_alone():
    x = torch.rand(16, 16, dtype=F64)
    with RandomRounding(0):
        y = x.exp()
        view = x.T
        picked = x.amax()  # a selection rounds nothing, and its backward looks for it
    plain = x.exp()
    next_up = torch.nextafter(plain.abs(), torch.tensor(torch.inf, dtype=F64))
    assert ((y - plain).abs() <= next_up - plain.abs()).all()
    assert (y != plain).any()
    assert (y == plain).any()
    assert view.data_ptr() == x.data_ptr()
    assert picked == x.max()


def test_random_rounding_sums_float64_matmuls_in_other_orders():
    """Equal terms round alike at every nearby input, but another kernel's order rounds
    them otherwise. Matmuls re-rolled that way keep their shapes, stay within the bound of
    any order of summing n terms (n eps times their sum), and, each of 1000 terms summed in
    turn, move further than the one ulp that every other result is moved."""
    a, b = torch.full((2, 3, 1000), 0.1, dtype=F64), torch.full((1000, 4), 0.3, dtype=F64)
    exact = float(1000 * Fraction(0.1) * Fraction(0.3))  # every product and sum exactly
    matmuls = {"mm": lambda: a[0] @ b, "bmm": lambda: torch.bmm(a, b.expand(2, -1, -1)),
               "addmm": lambda: torch.addmm(torch.zeros(4, dtype=F64), a[0], b)}
    for name, matmul in matmuls.items():
        runs = []
        for seed in range(8):
            with RandomRounding(seed):
                runs.append(matmul())
        got, plain = torch.stack(runs), matmul()
        assert got.shape[1:] == plain.shape, name
        assert ((got - exact).abs() <= 1000 * torch.finfo(F64).eps * exact).all(), name
        moved = (got - plain).abs().max() / torch.finfo(F64).eps / exact
        assert moved > 2, f"{name}: no run summed otherwise, only moved its result"


def test_random_rounding_sums_float64_in_turn_as_a_gemv_does():
    """Caffe's bias gradient sums 2048 rows of 1e-3 one after another (a gemv with a vector
    of ones): 60 times further from the exact 2.048 than torch's blocked sum. Some runs under
    random rounding take every sum so, those of odd seeds, and land where that kernel does;
    the others land apart from it."""
    x = torch.full((2048,), 1e-3, dtype=F64)
    in_turn, exact = float(x.cumsum(0)[-1]), float(2048 * Fraction(1e-3))
    assert abs(in_turn - exact) > 10 * abs(float(x.sum()) - exact)
    runs = []
    for seed in range(8):
        with RandomRounding(seed):
            runs.append(float(x.sum()))
    ulp = torch.finfo(F64).eps * exact
    assert [abs(r - in_turn) <= 2 * ulp for r in runs] == [s % 2 == 1 for s in range(8)], runs


def test_reordered_sums_keep_shape_and_value():
    """A sum over any of its forms' axes, taken in another order (and a float32 one in turn,
    its roundings carried): the same shape, a value within the rounding of any order, and
    no other order where there is one term."""
    x = torch.rand(3, 5, 7, dtype=F64)
    gen = torch.Generator().manual_seed(0)
    for args in ((x,), (x, [1]), (x, [0, 2], True), (x, [-1], False), (x, None, True)):
        func = aten.sum.default if len(args) == 1 else aten.sum.dim_IntList
        plain = func(*args)
        terms = x.numel() // plain.numel()  # two orders of n positive terms: n eps apart
        for got, dtype in ((reordered(func, args, {}, gen), F64),
                           (in_turn_float32((x.float(), *args[1:]), {}, gen), torch.float32)):
            assert got.shape == plain.shape, args[1:]
            rtol = terms * torch.finfo(dtype).eps
            assert torch.allclose(got, plain, rtol=rtol, atol=0), (args, dtype)
    assert reordered(aten.sum.dim_IntList, (x[:, :1], [1]), {}, gen) is None  # one term
    assert reordered(aten.sum.default, (x,), {"dtype": torch.float32}, gen) is None


@pytest.mark.parametrize("in_turn", [False, True], ids=["blocked", "in turn"])
def test_reordered_matmuls_keep_shape_layout_and_value(in_turn):
    """mm, bmm and addmm in float64, in another order or one product after another: the
    same shape, a contiguous result (a view of the partial sums once came back, whose
    ``view`` failed), and a value within the rounding of any order."""
    gen = torch.Generator().manual_seed(0)
    a, b, bias = (torch.rand(*s, dtype=F64) for s in ((5, 7), (7, 3), (3,)))
    for func, args in ((aten.mm.default, (a, b)), (aten.addmm.default, (bias, a, b)),
                       (aten.bmm.default, (a.expand(2, 5, 7), b.expand(2, 7, 3)))):
        plain, got = func(*args), reordered(func, args, {}, gen, in_turn)
        assert got.shape == plain.shape
        assert got.is_contiguous()
        # 7 positive terms a sum: any two orders are within 7 eps of each other
        assert torch.allclose(got, plain, rtol=7 * torch.finfo(F64).eps, atol=0)


def off_by(case, name: str, relative: float):
    """``case`` with its hand gradient of ``name`` off by ``relative``."""
    def gradients(**inputs):
        return {k: g * (1 + relative) if k == name else g
                for k, g in case.module.gradients(**inputs).items()}
    return planted(case, gradients=gradients)


def gpt_draw(vocabulary: int, wte: dict[int, float], beta: float, target: int, dtype):
    """tiny_gpt at every size 1 but the vocabulary, every weight 0 but these."""
    dims = dict.fromkeys(GPT.dims, 1) | {"V": vocabulary}
    inputs = {k: torch.zeros(GPT.shape(k, dims), dtype=dtype) for k in GPT.shapes}
    for row, value in wte.items():
        inputs["wte"][row, 0] = value
    inputs["lnf_beta"][0] = beta
    return inputs | {"idx": torch.tensor([[0]]), "target": torch.tensor([[target]])}


def test_float64_spares_an_exact_gradient_that_autograd_rounds_far_from():
    """The hand d_lnf_beta is within a few ulps of the exact value (60 digits, mpmath:
    -1.1399272728173981e-06; 3 on this CPU); autograd's was 6.7e-19 off here, 8 times the
    largest rounding its second differences showed (how far depends on the CPU's order of
    summing). The right answer passes. One 1e-9 off (1.1e-15) fails; 1e-10 off (1.1e-16)
    passes since sums are also taken one term after another (as a plain loop does): over
    the 1309 classes, autograd's runs that sum so land 2.3e-17 from it, 6 times that past
    1.1e-16."""
    inputs = gpt_draw(1309, {0: -0.0025, 1: 0.0010078125}, 0.003125, 117, F64)
    right, measured = GPT.manual(inputs), measure(GPT.reference, inputs)
    exact = -1.1399272728173981e-06
    assert abs(right["lnf_beta"].item() - exact) <= 4 * torch.finfo(F64).eps * abs(exact)
    verdict = measured.judge("exact", right)
    assert verdict.passed, verdict.explain()
    wrong = {**right, "lnf_beta": right["lnf_beta"] * (1 + 1e-9)}
    assert [j.name for j in measured.judge("1e-9 off", wrong).failures] == ["lnf_beta"]


def test_float64_sums_are_measured_in_other_orders_too():
    """Hypothesis drew a float64 attention whose weights are all equal. The hand and
    autograd's ``d_x`` take the same sums of 256 equal terms in kernels that block them
    differently; on one CPU they came out 93 and 34 ulps from the exact value
    (7.679959039959042e-05 at ``[0, 0, 0]``, mpmath, 60 digits), and autograd's second
    differences, whose steps keep equal terms equal, saw 19. Its runs with every sum taken
    in other orders spread as far as the two sides are apart: the right ``d_x`` passes, and
    one 1e-10 off fails."""
    inputs = {"x": torch.tensor([0.0, 1e-3, 1e-3, 1e-3], dtype=F64).reshape(2, 2, 1),
              "w_qkv": torch.full((1, 3, 2, 256), 1e-3, dtype=F64),
              "b_qkv": torch.ones(3, 2, 256, dtype=F64),
              "w_proj": torch.full((2, 256, 1), 0.1, dtype=F64),
              "b_proj": torch.zeros(1, dtype=F64), "v": torch.full((2, 2, 1), 1e-3, dtype=F64)}
    verdict = ATTENTION.verdict(inputs, draw="equal weights")
    assert verdict.passed, verdict.explain()
    wrong = off_by(ATTENTION, "x", 1e-10).verdict(inputs, draw="1e-10 off")
    assert [j.name for j in wrong.failures] == ["x"]


def test_below_float64_one_unlucky_rounding_is_judged_by_medians():
    """In float32 a hand d_lnf_beta whose cross-entropy summed ``exp`` before dividing was
    one ulp of 1e-3 off (1.2e-10) where autograd's own rounding happened to cancel
    (4e-14), and only the third look, manual's median under random rounding, passed it.
    The right gradient passes; one 0.5 % off fails, and fails that look too. (0.1 % off
    failed until float32 sums under random rounding were taken in turn in some runs: the
    softmax backward's 1304-term sum cancels to 7e-7 from partial sums near 1, and a
    kernel that adds them one after another moves autograd's d_lnf_beta by 0.23 %.)"""
    inputs = gpt_draw(1304, {0: 0.001}, 0.001, 27, F32)
    verdict = GPT.verdict(inputs, draw="one unlucky rounding")
    assert verdict.passed, verdict.explain()
    wrong = off_by(GPT, "lnf_beta", 5e-3).verdict(inputs, draw="0.5 % off")
    assert [j.name for j in wrong.failures] == ["lnf_beta"]
    judged = {j.name: j for j in wrong.judgements}["lnf_beta"]
    assert judged.how.startswith(f"manual's median over {ROUNDINGS} runs with random rounding")


def test_float16_sums_probabilities_past_its_whole_numbers():
    """2050 near-equal logits in float16: the other classes' ``exp`` sum to 2049, which
    float16 rounds to 2048, and a hand ``d_lnf_beta`` that took ``1 - p[target]`` from that
    sum came out 0 against a truth of 4.9e-7 (``cross_entropy``'s Numerics). Summed as
    probabilities it passes; one twice as large fails (4.9e-7 is 8 of float16's smallest
    steps, so a smaller mistake there is within its floor of 4)."""
    inputs = gpt_draw(2050, {1: 0.001}, 0.001, 0, torch.float16)
    verdict = GPT.verdict(inputs, draw="2050 classes")
    assert verdict.passed, verdict.explain()
    wrong = off_by(GPT, "lnf_beta", 1.0).verdict(inputs, draw="doubled")
    assert [j.name for j in wrong.failures] == ["lnf_beta"]
