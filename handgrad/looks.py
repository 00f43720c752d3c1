"""Autograd's own error, looked at again before a verdict fails anything: at nearby inputs,
under random rounding, the truth's own rounding, and with float32's range.

Autograd's error is one draw from the spread of its roundings. On a small tensor, or one
whose entries cancel to near 0, that draw can land close to exact by luck, and a right
derivation with ordinary rounding would then fail. So where manual fails the ratio rule,
the verdict takes a second look: autograd's error at ``SECOND_LOOKS`` inputs next to these
(``nearby``: every entry moved by up to two ulps, zeros included, which undoes structural
exactness such as the softmax of a row of zeros, 1/2^k), and the largest of them all. In
float64 each look also runs in float32, where moving a zero does break that exactness,
and carries its error up by 2^-29, float64's roundoff over float32's. Moving the inputs
does not re-roll every rounding (a sum of terms equal to the last bit rounds alike at every
nearby input), so the second look also runs autograd ``ROUNDINGS`` times with each of
its roundings drawn at random (``handgrad.rounding``).
Manual fails only if it is more than ``K`` times worse than the worst of them; a wrong
gradient is off by its mistake on every look.

The truth is exact only to float64's rounding, which is far below the dtype's, except where
it cancels: at llm.c's GELU of ``x = -7.5`` float64's ``1 - tanh^2`` is 0 where the exact
gradient is -5.5e-20, which llm.c's ``1 / cosh^2`` gets in float32, and autograd in float32
rounds tanh to -1 and gives the truth's 0 too. So where a tensor still fails and autograd's
error is 0 on every look (elsewhere its own error is the larger), the truth runs
``ROUNDINGS`` times under random rounding in float64, and how far that moves it counts as
autograd's error: a gradient within the truth's own rounding of it passes.

Where autograd gives NaN or inf and the truth is finite (float16's range ran out in its
backward), ``wide_range`` runs it again in float16's precision with float32's range
(``handgrad.wide_range.WideRange``): how far rounding alone takes it there.
"""

import functools
from collections.abc import Callable

import torch

from handgrad.nonfinite import largest, off
from handgrad.own_error import cast, errors_against_truth, float_dtype, nearby, second_difference
from handgrad.rounding import RandomRounding
from handgrad.verdict import Tensors
from handgrad.wide_range import WideRange

SECOND_LOOKS = 8
# Runs with random rounding, each side. Each costs a pass through Python per operation
# (41 ms for tiny_gpt's default draw in float32, against 2.8 ms plain). With 4, the right
# float32 d_lnf_beta of tests/test_rounding.py's GPT draw, from a cross-entropy that summed
# exp before dividing, came out at 2.02 times autograd's largest (allowed: 2); with 8, 0.75.
ROUNDINGS = 8
F32 = torch.float32
F64_OVER_F32 = torch.finfo(torch.float64).eps / torch.finfo(torch.float32).eps  # 2^-29


class Looks:
    """Autograd run once on ``inputs``, the truth beside it, and the later looks at its own
    error, each taken once, when first asked for."""

    def __init__(self, autograd: Callable[[Tensors], Tensors], inputs: Tensors,
                 held: Callable[[], bool] | None = None):
        inputs = {k: t.detach() for k, t in inputs.items()}
        self._autograd, self._inputs, self._held = autograd, inputs, held
        self.dtype = float_dtype(inputs)
        if self.dtype == torch.float64:
            self.autograd = self.truth = autograd(inputs)
            self.errors: dict[str, float] | None = second_difference(
                autograd, inputs, self.autograd)
        else:
            self.autograd, self.truth, _, _ = errors_against_truth(autograd, inputs)
            self.errors = None  # measured by the verdict, which also finds where
        self._nearby: dict[str, float] | None = None
        self._offs: list[Tensors] = []  # autograd's error entry by entry, a dict a look
        self._rounded: list[dict[str, float]] = []
        self._rounded_max: dict[str, float] = {}
        self._truth_moved: dict[str, float] | None = None

        self._wide_range: Tensors | None = None
        self._wide_errors: dict[str, float] | None = None
        # Where some run under random rounding gave NaN or inf: a rounding can overflow there
        self.rounded_non_finite: dict[str, torch.Tensor] = {}

    def nearby_errors(self) -> dict[str, float]:
        """Autograd's largest error over ``SECOND_LOOKS`` inputs next to these (below
        float64 each look's errors are kept for ``mean``)."""
        if self._nearby is None:
            looks = []
            for i in range(SECOND_LOOKS):
                moved = nearby(self._inputs, i)
                if self.dtype != torch.float64:
                    _, _, errors, offs = errors_against_truth(self._autograd, moved)
                    looks.append(errors)
                    self._offs.append(offs)
                    continue
                # In float64 a zero moved by two ulps of 1 is still too small to break
                # structural exactness (exp(4e-16) rounds to 1): the same look in float32,
                # where it does, carried up by float64's roundoff over float32's.
                low = errors_against_truth(self._autograd, nearby(cast(self._inputs, F32), i))
                looks.append({k: max(e, low[2][k] * F64_OVER_F32)
                              for k, e in second_difference(self._autograd, moved).items()})
            self._nearby = {k: max(look[k] for look in looks) for k in self.autograd}
        return self._nearby

    def rounded_errors(self) -> dict[str, float]:
        """``nearby_errors``, or autograd's largest error over ``ROUNDINGS`` runs under
        ``RandomRounding`` where that is larger (against the truth; in float64, against
        autograd as it rounds at these inputs)."""
        if not self._rounded:
            nearby_max = self.nearby_errors()
            for seed in range(ROUNDINGS):
                with RandomRounding(seed):
                    got = self._autograd(self._inputs)
                offs = {k: off(got[k], t) for k, t in self.truth.items()}
                self._rounded.append({k: largest(d, d.isfinite()) for k, d in offs.items()})
                for k, a in got.items():
                    self.rounded_non_finite[k] = self.rounded_non_finite.get(
                        k, torch.zeros_like(a, dtype=torch.bool)) | ~torch.isfinite(a)
                self._offs += [offs] if self.dtype != torch.float64 else []
            self._rounded_max = {k: max(e, *(look[k] for look in self._rounded))
                                 for k, e in nearby_max.items()}
        return self._rounded_max

    def truth_errors(self) -> dict[str, float]:
        """Below float64: how far the truth itself moves over ``ROUNDINGS`` runs under
        ``RandomRounding`` in float64, per tensor (module docstring); each run is kept as a
        look of autograd's error for ``mean``."""
        if self._truth_moved is None:
            looks = []
            for seed in range(ROUNDINGS):
                with RandomRounding(seed):
                    moved = self._autograd(cast(self._inputs, torch.float64))
                offs = {k: off(moved[k], t) for k, t in self.truth.items()}
                looks.append({k: largest(d, d.isfinite()) for k, d in offs.items()})
                self._offs.append(offs)
            self._truth_moved = {k: max(look[k] for look in looks) for k in self.truth}
        return self._truth_moved

    def mean(self, name: str) -> Callable[[torch.Tensor], float]:
        """Autograd's largest mean error over the looks taken so far, on the entries given
        (``handgrad.mean_rule``)."""
        # On the CPU, where the verdict judges (``handgrad.verdict.judge_one``)
        looks = torch.stack([look[name] for look in self._offs]).cpu() if self._offs else None

        def largest_mean(over: torch.Tensor) -> float:
            if looks is None:
                return 0.0
            judged = (over & looks.isfinite()).reshape(len(looks), -1)
            counts = judged.sum(1)
            sums = torch.where(judged, looks.reshape(len(looks), -1), 0).sum(1)
            return float((sums / counts.clamp(min=1)).max())
        return largest_mean

    @functools.cached_property
    def gave_up(self) -> bool:
        """Whether autograd is NaN or inf somewhere the truth is finite (asked at every
        judgement: once)."""
        return any((~torch.isfinite(a) & torch.isfinite(self.truth[k])).any()
                   for k, a in self.autograd.items())

    @property
    def held(self) -> bool:
        """Whether the forward held in this dtype (``Case.holds``), asked only where autograd
        gave up somewhere the truth is finite, the one place it matters."""
        if callable(self._held):
            self._held = self._held() if self.gave_up else True
        return True if self._held is None else self._held

    @property
    def wide_range(self) -> Tensors:
        """Where autograd gave up: autograd again, in the dtype's precision with float32's
        range (``WideRange``), which shows how far rounding alone takes it there."""
        if self._wide_range is None:
            self._wide_range = {}
            if self.gave_up:
                with WideRange(self.dtype):
                    self._wide_range = self._autograd(cast(self._inputs, F32))
        return self._wide_range

    def wide_errors(self) -> dict[str, float]:
        """Where autograd gave up, the second look: autograd with float32's range
        (``wide_range``), its largest error over ``SECOND_LOOKS`` inputs next to these, each
        against its own truth. As elsewhere, moving the inputs undoes an exactness of
        structure: on a constant column autograd's ``v - mean(v)`` is an exact 0, where a
        right fused form's ``N v - sum(v)`` is a rounding off."""
        if self._wide_errors is None:
            looks = []
            for i in range(SECOND_LOOKS):
                moved = nearby(self._inputs, i)
                with WideRange(self.dtype):
                    got = self._autograd(cast(moved, F32))
                truth = self._autograd(cast(moved, torch.float64))
                looks.append({k: largest((g.double() - truth[k]).abs(),
                                         g.isfinite() & truth[k].isfinite())
                              for k, g in got.items()})
            self._wide_errors = {k: max(look[k] for look in looks) for k in self.autograd}
        return self._wide_errors
