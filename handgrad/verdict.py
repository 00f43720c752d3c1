"""The verdict: is a hand-derived gradient as accurate as autograd's, in the dtype it ran in?

Two roundings of one sum drift apart with its length, its terms' size and the order a
kernel takes them in (an Intel and an AMD CPU disagree, a GPU more so), so handgrad asks
not whether manual and autograd agree within a fixed tolerance but whether manual is as
close to the exact answer as autograd is, which holds on any machine, at any size.

Below float64 (float32, bfloat16, float16) the exact answer, the *truth*, is autograd's
gradient of the same inputs, upcast to float64: its own rounding is about 2^-29 of
float32's and cannot hide an error in the lower dtype. Per gradient tensor::

    err(manual)   = max |manual - truth|      over the finite entries
    err(autograd) = max |autograd - truth|
    passes when     err(manual) <= K * err(autograd) + floor

``K = 2`` follows FlashAttention, whose tests hold a hand-written backward to twice the
max error of PyTorch's own in the same precision. A right derivation that takes its sums
in another order lands within a small factor of autograd; a wrong one is off by its
mistake, whatever the rounding. The largest ratio the suite measures is in the README.
Beside it, in bfloat16 and float16, the mean errors are held to the same ratio
(``handgrad.mean_rule``): an error spread over every entry, under the worst entry's floor,
does not hide in the mean. A
failure below float64 says whether manual is wrong (off in float64 too, by as much) or
less accurate than autograd in that dtype: a wrong gradient's error does not shrink with
precision, a right one's does (``handgrad.measure``).

In float64 torch has no higher precision to take as the truth, so ``handgrad.measure``
measures autograd's own rounding by a second difference over a step of two ulps, and
manual and autograd are compared with each other. If each were within ``K`` times
that of the truth, they would be within ``K + 1`` times it of each other; but that measure
is a few draws of autograd's rounding, not its bound, and where thousands of terms cancel
to near zero (a softmax over 16384 classes, whose max's gradient autograd spreads over
tied entries as rounding noise) the one rounding that counts has come out 3.7 times the
largest of nine draws. So the float64 rule allows twice that::

    passes when     max |manual - autograd| <= K_FLOAT64 * err(autograd, measured) + floor

with ``K_FLOAT64 = 2 (K + 1) = 6``. A relative error of 1e-12 at the gradient's scale is
still caught; the README lists the smallest error caught per case and dtype.

``floor`` is ``FLOOR_ULPS`` units in the last place at the gradient's scale (its largest
entry): where autograd is exact (``2 * v`` has no rounding to speak of) a derivation with
one more rounding step must still pass. Four ulps covers the two or three extra roundings a
re-ordered closed form takes; a wrong gradient is off by far more than that. In float64,
where two roundings are compared with each other, it is four ulps a side.

Below the smallest normal number a value keeps fewer bits than its dtype's precision, down
to one: where a right form's intermediate falls there (``dy * x`` of two small numbers,
scaled up by ``rstd`` after; ``bngain bnvar_inv / n``, divided by ``n`` before it is
multiplied back) its result is off by up to the intermediate's spacing times what scales
it back, where autograd, rounding in another order, may not be. In float32 and bfloat16
that is below 1.2e-38, far under any gradient that trains, so there an error is judged
only down to the normal range's edge: both floors are at least 1.2e-38. Hypothesis found
four: RMSNorm's ``x rstd^3`` form, its ``d_weight`` 35 % off at 2e-42; llm.c's layer norm,
4.7e-43 off where autograd is 3.4e-43 off; Caffe's folded ``d_x``, 7.8e-45 off; and, on a
gradient above the edge, Karpathy's fused batch norm, 1.4e-42 off at 4.1e-38 where autograd
is 3.2e-43 off. Not float16, whose normal numbers stop at 6.1e-5, among real gradients
(float16 training scales its loss for them): there a form must keep its digits, and one
whose intermediate underflows is less accurate than autograd, as the verdict says.

Non-finite entries: wherever autograd's gradient is NaN or inf, manual's is too (either),
and wherever autograd's is finite, so is manual's, with these exceptions, each a right
answer that failed once:

- autograd overflowed below float64 where the truth is finite: a finite manual is judged
  against the truth there by what the rule allows at any other entry, autograd's error
  counting as the largest of the truth's size there, autograd's error over the rest of the
  tensor, and that of autograd run in the dtype's precision with float32's range, there
  and over the tensor (a float16 GPT's GELU gives ``0 * inf`` where the slope is 0, and
  the hand gradient gives the 0; in another, ``d_ln1_beta`` sums 32 float16 subnormals
  that cancel to 3e-8, and both the hand gradient and that run of autograd come out 6e-5);
  where manual fails that, as at any entry a second look takes that run's largest error
  over nearby inputs too (a float16 batch norm of a constant column: with float32's range
  autograd's ``v - mean(v)`` is an exact 0, the fused ``N v - sum(v)`` 3.8e-5);
- the dtype could not hold the forward (``held``; a float16 layer norm of ``[1000, 0]``,
  variance 250000, normalises to 0): the truth is another function's, so a finite manual
  against autograd's NaN is not judged;
- one side is inf and the other within ``FLOOR_ULPS`` ulps of the largest number, or the
  truth moved by ``K`` times autograd's error is past it (a float16 block's true 60000:
  48000 by autograd, 72016 so inf by hand);
- autograd too goes NaN or inf there in a run with random rounding (``handgrad.rounding``):
  the rounding decided it (that block's inf, times a gamma of 0, gave NaN further down).

What no verdict can judge: a value that is zero in exact arithmetic and rounding noise in
practice (the gradient of a softmax's shift), whose scale is its own noise. A backward
should not name such a step; the exact zero is the derivation.
"""

from collections.abc import Callable, Mapping

import torch

from handgrad.judgement import GAVE_UP, Judgement, Verdict
from handgrad.mean_rule import DTYPES, K_MEAN, above, broken, mean_error, mean_floor
from handgrad.nonfinite import sorted_out

Tensors = dict[str, torch.Tensor]

K = 2.0
K_FLOAT64 = 2 * (K + 1)
FLOOR_ULPS = 4.0
UNDERFLOW = torch.finfo(torch.float32).smallest_normal  # float32's and bfloat16's: 1.2e-38
WIDE_EXPONENT = (torch.float32, torch.bfloat16)  # errors below UNDERFLOW not judged


def ulp(dtype: torch.dtype, scale: float) -> float:
    """The spacing of ``dtype``'s numbers near ``scale``, bounded below by the subnormals'."""
    info = torch.finfo(dtype)
    return max(info.eps * scale, info.smallest_normal * info.eps)


def _located(diff: torch.Tensor, mask: torch.Tensor | None,
             ) -> tuple[float, tuple[int, ...] | None]:
    """The largest entry of ``diff`` where ``mask`` holds (everywhere, for no mask), and
    its index."""
    if not diff.numel() or (mask is not None and not mask.any()):
        return 0.0, None
    masked = _where(mask, diff).flatten()
    position = int(masked.argmax())
    index, rest = [], position
    for size in reversed(diff.shape):  # the flat position as an index, last axis fastest
        rest, i = divmod(rest, size)
        index.insert(0, i)
    return float(masked[position]), tuple(index)


def _where(mask: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """``x`` where ``mask`` holds and 0 elsewhere; all of ``x`` for no mask."""
    return x if mask is None else torch.where(mask, x, 0)


def _at(t: torch.Tensor, index: tuple[int, ...] | None) -> float | None:
    return None if index is None else float(t[index])


def _off_where_autograd_gave_up(m, a, t, gave_up, err_a: float, floor: float,
                                wide_range: torch.Tensor | None, wide_error: float = 0.0):
    """Where autograd gave up (module docstring), a finite manual against the truth, allowed
    what the rule allows at any other entry of the tensor, ``K`` times autograd's error
    there plus the floor, where autograd's error is the largest of: the truth's size there,
    autograd's error with float32's range there and over the tensor (and on a second look,
    ``wide_error``, over nearby inputs), and its own error over the rest of the tensor. The
    failure in words and its index, or None."""
    size = t.abs().clamp(min=max(err_a, wide_error))
    if wide_range is not None:  # where that run is finite too
        off_wide = (wide_range.to("cpu", torch.float64) - t).abs()
        off_wide = torch.where(off_wide.isfinite(), off_wide, 0)
        size = torch.maximum(size, off_wide).clamp(min=float(off_wide.max()))
    off = gave_up & ((m - t).abs() > K * size + floor)
    if not off.any():
        return None
    index = tuple(int(i) for i in off.nonzero()[0])
    nearby = " (over these and nearby inputs)" if wide_error else ""
    return (f"manual is {float(m[index])} {GAVE_UP} {float(a[index])} and the "
            f"truth is {float(t[index])} (index {index}): further from it than {K:g} times "
            f"the largest of its size, autograd's error elsewhere and autograd's error with "
            f"float32's range{nearby}, {float(size[index]):.2e}, plus the floor {floor:.1e}",
            index)


def judge_one(name: str, manual, autograd: torch.Tensor, truth: torch.Tensor,
              error: float | None = None, looks: int = 1, how: str = "",
              held: bool = True, overflowed: torch.Tensor | None = None,
              wide_range: torch.Tensor | None = None,
              mean: Callable[[torch.Tensor], float] | None = None,
              wide_error: float = 0.0) -> Judgement:
    """The verdict on one gradient. ``error`` and ``mean`` are autograd's own largest and
    mean error where they are not measured here against ``truth``: in float64 (``truth``
    is then autograd itself), and on a later look (``handgrad.measure``), which ``looks``
    counts and ``how`` describes; ``mean`` gives autograd's largest mean error over those
    looks on the entries it is given. ``held``: whether the forward held in this dtype, finite
    wherever float64's is (where it did not, see the module docstring). ``overflowed``:
    where autograd itself gave NaN or inf in some run with random rounding. ``wide_range``:
    autograd in the dtype's precision with float32's range (``handgrad.wide_range.WideRange``),
    for where autograd gave up; ``wide_error``: its error over nearby inputs too."""
    dtype, device = autograd.dtype, autograd.device.type
    base = dict(name=name, dtype=dtype, device=device, looks=looks, how=how,
                k=K_FLOAT64 if dtype == torch.float64 else K)

    def problem(text: str, index=None) -> Judgement:
        return Judgement(**base, passed=False, err_manual=float("nan"),
                         err_autograd=float("nan"), floor=0.0, index=index, problem=text)

    if not isinstance(manual, torch.Tensor):
        return problem(f"manual gives a {type(manual).__name__}, not a tensor")
    for what, got, want in (("shape", tuple(manual.shape), tuple(autograd.shape)),
                            ("dtype", manual.dtype, dtype),
                            ("device", manual.device.type, device)):
        if got != want:
            return problem(f"manual's {what} is {got}, autograd's {want}")
    m, a, t = (x.detach().to("cpu", torch.float64) for x in (manual, autograd, truth))
    if bool(torch.isfinite(m).all() & torch.isfinite(a).all() & torch.isfinite(t).all()):
        judged_m = judged_a = gave_up = None  # the usual case: every entry is judged
    else:
        found = sorted_out(manual, autograd, m, a, t, error, overflowed, K, FLOOR_ULPS)
        if isinstance(found[0], str):
            return problem(*found)
        judged_m, judged_a, gave_up = found
    scale = float(_where(judged_m, t.abs()).max()) if t.numel() else 0.0
    edge = UNDERFLOW if dtype in WIDE_EXPONENT else 0.0  # the normal range's (docstring)
    floor = max(FLOOR_ULPS * ulp(dtype, scale) * (2 if dtype == torch.float64 else 1), edge)
    err_a = error if error is not None else _located((a - t).abs(), judged_a)[0]
    if gave_up is not None and held:
        text = _off_where_autograd_gave_up(m, a, t, gave_up, err_a, floor, wide_range,
                                           wide_error)
        if text is not None:
            return problem(*text)
    if gave_up is not None:  # judged just now, or another function's gradient (``held``)
        judged_m = judged_m & ~gave_up
    off = (m - t).abs()
    err_m, index = _located(off, judged_m)
    means, over = {}, None
    if dtype != torch.float64:  # the entries the ratio rule asks a digit of
        over = above(t, base["k"] * err_a + floor, judged_m)
    if dtype in DTYPES and bool(over.any()):  # the mean rule (handgrad.mean_rule)
        means = dict(mean_k=K_MEAN, mean_manual=mean_error(off, over),
                     mean_autograd=mean_error((a - t).abs(),
                                              over if judged_a is None else over & judged_a),
                     mean_floor=max(mean_floor(dtype, t, over, ulp(dtype, scale)), edge))
        if mean is not None and broken(means["mean_manual"], means["mean_autograd"],
                                       means["mean_floor"]):
            means["mean_autograd"] = max(means["mean_autograd"], mean(over))  # later looks
    judged = Judgement(**base, passed=True, err_manual=err_m, err_autograd=err_a,
                       floor=floor, index=index, manual_at=_at(m, index),
                       autograd_at=_at(a, index), truth_at=_at(t, index),
                       err_digits=err_m if over is None else _located(off, over)[0],
                       **means)
    if judged.broke_max or judged.broke_mean:
        return Judgement(**{**judged.__dict__, "passed": False})
    return judged


def missing(name: str, manual: Mapping[str, object]) -> str:
    """Why a gradient is missing, in the convention: each one is keyed by the bare name of
    what it differentiates (``{"x": d_x}``), never by ``"d_x"``."""
    prefixed = [k for k in manual if isinstance(k, str) and k.startswith("d_")]
    hint = f"; drop the d_ prefix of {sorted(prefixed)}" if prefixed else ""
    return (f"missing: expected the key {name!r} (each gradient under the bare name of what "
            f"it differentiates: {{{name!r}: d_{name}}}); manual gives {sorted(manual)}{hint}")


def judge(label: str, manual: Mapping[str, object], autograd: Tensors, truth: Tensors,
          errors: Mapping[str, float] | None = None, looks: int = 1, how: str = "",
          held: bool = True, overflowed: Mapping[str, torch.Tensor] | None = None,
          wide_range: Mapping[str, torch.Tensor] | None = None) -> Verdict:
    """Judge every gradient autograd gives; one that manual does not give fails."""
    judgements = []
    for name, want in autograd.items():
        if name not in manual:
            judgements.append(Judgement(name, want.dtype, want.device.type, False, float("nan"),
                                        float("nan"), K, 0.0, problem=missing(name, manual)))
            continue
        judgements.append(judge_one(name, manual[name], want, truth[name],
                                    None if errors is None else errors[name], looks, how,
                                    held, (overflowed or {}).get(name),
                                    (wide_range or {}).get(name)))
    return Verdict(label, tuple(judgements))
