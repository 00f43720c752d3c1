"""Autograd's side of a verdict: its result, the truth, and how far apart the two are.

``measure(autograd, inputs)`` runs autograd once in the inputs' dtype and keeps what the
verdict (``handgrad.verdict``) needs to judge any number of manual results against it:

- below float64, the truth (autograd on the inputs upcast to float64), from which
  autograd's own error is measured tensor by tensor;
- in float64, autograd's own rounding, measured by its second difference
  (``handgrad.own_error``).

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

Below float64, where the case's manual gradient can be run again (``compare``), a third
look re-rolls manual's roundings as the second re-rolled autograd's: where a sum cancels to
far below its terms, one rounding can flip a result by an ulp of the terms, and
round-to-nearest may flip manual's where it spared autograd's. Manual runs ``ROUNDINGS``
times under random rounding, and each tensor still failing passes if manual's median error
there is within ``K`` times autograd's largest. In a float32 GPT whose ``d_lnf_beta`` is
7.7e-7, summed from terms of 1e-3, one hand form's rounding was 1.2e-10 off and autograd's
4e-14; under random rounding both sides' medians were 3e-11 to 4e-11. A wrong gradient is
off by its mistake in every run, so in the median too.

The truth is exact only to float64's rounding, which is far below the dtype's, except where
it cancels: at llm.c's GELU of ``x = -7.5`` float64's ``1 - tanh^2`` is 0 where the exact
gradient is -5.5e-20, which llm.c's ``1 / cosh^2`` gets in float32, and autograd in float32
rounds tanh to -1 and gives the truth's 0 too. So where a tensor still fails and autograd's
error is 0 on every look (elsewhere its own error is the larger), the truth runs
``ROUNDINGS`` times under random rounding in float64, and how far that moves it counts as
autograd's error: a gradient within the truth's own rounding of it passes.

Where autograd gives NaN or inf and the truth is finite (float16's range ran out in its
backward), ``wide_range`` runs it again in float16's precision with float32's range
(``handgrad.rounding.WideRange``): how far rounding alone takes it there.
"""

import functools
from collections.abc import Callable, Mapping

import torch

from handgrad.diagnosis import diagnosis
from handgrad.judgement import GAVE_UP, Judgement, Verdict
from handgrad.mean_rule import mean_error
from handgrad.nonfinite import largest, off
from handgrad.own_error import cast, errors_against_truth, float_dtype, nearby, second_difference
from handgrad.rounding import RandomRounding, WideRange
from handgrad.untouched import own_copy
from handgrad.verdict import Tensors, judge, judge_one

SECOND_LOOKS = 8
# Runs with random rounding, each side. Each costs a pass through Python per operation
# (41 ms for tiny_gpt's default draw in float32, against 2.8 ms plain). With 4, the right
# float32 d_lnf_beta of tests/test_rounding.py's GPT draw, from a cross-entropy that summed
# exp before dividing, came out at 2.02 times autograd's largest (allowed: 2); with 8, 0.75.
ROUNDINGS = 8
F32 = torch.float32
F64_OVER_F32 = torch.finfo(torch.float64).eps / torch.finfo(torch.float32).eps  # 2^-29


class Measured:
    """Autograd's side of a comparison, computed once; ``judge`` manual results against it."""

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
        looks = torch.stack([look[name] for look in self._offs]) if self._offs else None

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

    def judge(self, label: str, manual: Mapping[str, object],
              rerun: Callable[[Tensors], Mapping[str, object]] | None = None) -> Verdict:
        """The verdict on ``manual``, autograd's error measured again before anything fails;
        ``rerun`` (manual as a function of the inputs) allows the third look, and a failure
        below float64 then says whether manual is wrong or less accurate (``_diagnosed``)."""
        verdict = self._looks(label, manual, rerun)
        if verdict.passed or rerun is None or self.dtype == torch.float64:
            return verdict
        return Verdict(verdict.label, verdict.judgements,
                       lambda failed: self._diagnosed(failed, rerun))

    def _looks(self, label: str, manual: Mapping[str, object],
               rerun: Callable[[Tensors], Mapping[str, object]] | None) -> Verdict:
        if any(isinstance(m, torch.Tensor) and m.shape == self.autograd[k].shape
               and (~torch.isfinite(m) & torch.isfinite(self.autograd[k])).any()
               for k, m in manual.items() if k in self.autograd):
            self.rounded_errors()  # manual overflowed where autograd did not: could it have?
        first = judge(label, manual, self.autograd, self.truth, self.errors, held=self.held,
                      overflowed=self.rounded_non_finite, wide_range=self.wide_range)
        if any(GAVE_UP in (j.problem or "") for j in first.failures):
            wide = self.wide_errors()
            first = _replaced(first, {j.name: self._again(
                j.name, manual, error=None if self.errors is None else self.errors[j.name],
                wide_error=wide[j.name]) for j in first.failures if GAVE_UP in (j.problem or "")})
        if first.passed or all(j.problem for j in first.failures):
            return first
        verdict = first
        before = {j.name: j.err_autograd for j in first.judgements}
        for looks, how, measured in (
                (1 + SECOND_LOOKS, f"the largest over these and {SECOND_LOOKS} nearby inputs",
                 self.nearby_errors),
                (1 + SECOND_LOOKS + ROUNDINGS, f"the largest over these inputs, {SECOND_LOOKS} "
                 f"nearby ones and {ROUNDINGS} runs with random rounding", self.rounded_errors)):
            again = measured()
            if all(again[j.name] <= before[j.name] and not j.broke_mean
                   for j in verdict.failures):
                continue  # nothing that failed is judged any differently
            before = {j.name: max(j.err_autograd, again[j.name]) for j in first.judgements}
            # Only what failed is judged again: a look can only raise autograd's error, so
            # what passed passes still (and keeps its first look's ratio).
            verdict = _replaced(verdict, {j.name: self._again(
                j.name, manual, error=0.0 if j.problem else before[j.name], looks=looks,
                how=how, mean=self.mean(j.name)) for j in verdict.failures if j.name in manual})
            if verdict.passed or all(j.problem for j in verdict.failures):
                return verdict
        exact = [j for j in verdict.failures if not j.problem and j.err_autograd == 0]
        if exact and self.dtype != torch.float64:  # the truth's own rounding (docstring)
            spread = self.truth_errors()
            verdict = _replaced(verdict, {j.name: self._again(
                j.name, manual, error=spread[j.name], looks=1 + SECOND_LOOKS + 2 * ROUNDINGS,
                how=f"{j.how or 'the largest over these'}, and the truth's own float64 "
                    f"rounding over {ROUNDINGS} runs with random rounding",
                mean=self.mean(j.name)) for j in exact})
            if verdict.passed or all(j.problem for j in verdict.failures):
                return verdict
        if rerun is None or self.dtype == torch.float64:
            return verdict
        return self._as_algorithms(label, verdict, rerun)

    def _again(self, name: str, manual: Mapping[str, object], **looked) -> Judgement:
        """``name`` of ``manual`` (or of one of its runs) judged once more with what a later
        look measured (``looked``: autograd's error, mean error or error with float32's
        range, and the looks taken)."""
        return judge_one(name, manual[name], self.autograd[name], self.truth[name],
                         held=self.held, overflowed=self.rounded_non_finite.get(name),
                         wide_range=self.wide_range.get(name), **looked)

    def _as_algorithms(self, label: str, second: Verdict,
                       rerun: Callable[[Tensors], Mapping[str, object]]) -> Verdict:
        """The third look, below float64: manual run ``ROUNDINGS`` times under
        ``RandomRounding``, each tensor that failed judged by its median error there
        against autograd's largest on the second look (module docstring)."""
        runs = []
        for seed in range(ROUNDINGS, 2 * ROUNDINGS):  # draws of its own
            with RandomRounding(seed):
                runs.append(rerun(self._inputs))
        middle = ROUNDINGS // 2  # the upper median
        judgements: list[Judgement] = []
        for j in second.judgements:
            if j.passed or j.problem:
                judgements.append(j)
                continue
            t = self.truth[j.name]

            # A run that went NaN or inf where the truth is finite ranks last, not first:
            # its finite entries alone would make it look the best of the runs.
            def error(run: Mapping[str, object], name=j.name, t=t, of=largest) -> float:
                m = run[name].to(torch.float64)
                if (~torch.isfinite(m) & torch.isfinite(t)).any():
                    return float("inf")
                return of((m - t).abs(), torch.isfinite(m) & torch.isfinite(t))

            def mean(run: Mapping[str, object], name=j.name, t=t) -> float:
                return error(run, name, t, mean_error)

            how = (f"manual's median over {ROUNDINGS} runs with random rounding, against "
                   f"autograd's largest over {j.how.removeprefix('the largest over ') or 'these'}")
            by_max, by_mean = (self._again(
                j.name, sorted(runs, key=key)[middle], error=j.err_autograd, looks=j.looks,
                how=how, mean=self.mean(j.name)) for key in (error, mean))
            if by_max.problem or by_mean.problem:
                judgements.append(by_max if by_max.problem else by_mean)
                continue
            judgements.append(Judgement(**{**by_max.__dict__, "mean_manual": by_mean.mean_manual,
                                           "passed": not (by_max.broke_max or by_mean.broke_mean)}))
        return Verdict(label, tuple(judgements))


    def _diagnosed(self, verdict: Verdict,
                   rerun: Callable[[Tensors], Mapping[str, object]]) -> Verdict:
        """Each failure below float64 says whether manual is wrong or less accurate: a wrong
        gradient's error does not shrink with precision, a right one's does. Manual runs
        again on the same inputs in float64: it is right there if it passes the float64
        rule, or if its error shrank as a rounding error does (``handgrad.diagnosis``)."""
        wide = cast(self._inputs, torch.float64)
        try:
            again = Measured(self._autograd, wide).judge(verdict.label, rerun(wide))
        except (RuntimeError, TypeError, ValueError, NotImplementedError) as error:
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            again, note = None, f"not run again in float64 ({first})"
        judgements = []
        for j in verdict.judgements:
            if not j.passed and again is not None:
                there = next(k for k in again.judgements if k.name == j.name)
                note = diagnosis(j, there, self.dtype)
            judgements.append(j if j.passed else Judgement(**{**j.__dict__, "diagnosis": note}))
        return Verdict(verdict.label, tuple(judgements))


def _replaced(verdict: Verdict, judged: Mapping[str, Judgement]) -> Verdict:
    """``verdict`` with the judgements of the tensors in ``judged`` replaced."""
    return Verdict(verdict.label, tuple(judged.get(j.name, j) for j in verdict.judgements))


def measure(autograd: Callable[[Tensors], Tensors], inputs: Tensors,
            held: Callable[[], bool] | None = None) -> Measured:
    """Run autograd on ``inputs``, and what the verdict needs beside it. ``held`` asks
    whether the forward in the inputs' dtype held (``Case.holds``; see ``judge_one``)."""
    return Measured(autograd, inputs, held)


def compare(label: str, manual: Callable[[Tensors], Mapping[str, object]],
            autograd: Callable[[Tensors], Tensors], inputs: Tensors,
            held: Callable[[], bool] | None = None) -> Verdict:
    """Run both sides on ``inputs`` and judge every tensor autograd gives.

    ``manual`` and ``autograd`` map inputs to named tensors: gradients, chain-rule steps,
    parameters after training steps, anything computed in the inputs' dtype. ``manual``
    is given copies of the inputs (``handgrad.untouched``): what it writes into them,
    autograd and the truth never see.
    """
    def copied(x: Tensors) -> Mapping[str, object]:
        return manual({k: own_copy(t) for k, t in x.items()})

    got = copied(inputs)  # first: Case.verdict orders autograd's side by the backward's names
    return measure(autograd, inputs, held).judge(label, got, rerun=copied)
