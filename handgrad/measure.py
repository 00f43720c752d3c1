"""Autograd's side of a verdict: its result, the truth, and how far apart the two are.

``measure(autograd, inputs)`` runs autograd once in the inputs' dtype and keeps what the
verdict (``handgrad.verdict``) needs to judge any number of manual results against it:

- below float64, the truth (autograd on the inputs upcast to float64), from which
  autograd's own error is measured tensor by tensor;
- in float64, autograd's own rounding, measured by its second difference
  (``handgrad.own_error``).

Where a manual result fails, autograd's own error is looked at again (``handgrad.looks``:
nearby inputs, random rounding, the truth's own rounding, float32's range), each look taken
once and only then, and manual fails only if it fails against them all.

Below float64, where the case's manual gradient can be run again (``compare``), a third
look re-rolls manual's roundings as the second re-rolled autograd's: where a sum cancels to
far below its terms, one rounding can flip a result by an ulp of the terms, and
round-to-nearest may flip manual's where it spared autograd's. Manual runs ``ROUNDINGS``
times under random rounding, and each tensor still failing passes if manual's median error
there is within ``K`` times autograd's largest. In a float32 GPT whose ``d_lnf_beta`` is
7.7e-7, summed from terms of 1e-3, one hand form's rounding was 1.2e-10 off and autograd's
4e-14; under random rounding both sides' medians were 3e-11 to 4e-11. A wrong gradient is
off by its mistake in every run, so in the median too.

Where a tensor still fails only at entries whose truth is within what the rule allows
(``K`` times autograd's error plus the floor: an entry the rule would pass as 0, so asks
no digit of; ``Judgement.broke_noise_only``), those entries are rounding noise in this
dtype, and each form's noise is a rounding at the size of its own terms, which differ by
form: Karpathy's fused batch norm of a constant column, 3.4 times autograd's; llm.c's
attention at equal scores, whose float32 Jacobian sum leaves noise on a ``d_q`` that is 0
in truth and by autograd's path through the row max, 2.3 to 5.5 times autograd's error on
the tensor. Autograd's error there stands for eps of its terms, and a mistake's error is
of the terms' size, 1/eps times that. The tensor passes where manual is right in float64
(its error shrinks with precision, ``handgrad.diagnosis``) and within ``K eps^-1/2`` times
autograd's error, half the way between the two in orders of magnitude, as the diagnosis
draws its line: 23 times in bfloat16, 64 in float16, 5800 in float32. A form whose noise
is larger still fails (the zoo's attention with ``p`` from one log-sum-exp, 1870 times
autograd's on a saturated bfloat16 draw), and so does a mistake, and so does any entry the
rule asks a digit of (the zoo's attention without the row max's path, 1500 times autograd's
at a ``d_x`` of 21.7 in float32).
"""

import functools
from collections.abc import Callable, Mapping

import torch

from handgrad.diagnosis import diagnosis
from handgrad.judgement import GAVE_UP, LESS_ACCURATE, Judgement, Verdict
from handgrad.looks import ROUNDINGS, SECOND_LOOKS, Looks
from handgrad.mean_rule import mean_error
from handgrad.nonfinite import largest
from handgrad.own_error import cast
from handgrad.rounding import RandomRounding
from handgrad.untouched import own
from handgrad.verdict import K, Tensors, judge, judge_one


class Measured(Looks):
    """Autograd's side of a comparison, computed once; ``judge`` manual results against it."""

    def judge(self, label: str, manual: Mapping[str, object],
              rerun: Callable[[Tensors], Mapping[str, object]] | None = None) -> Verdict:
        """The verdict on ``manual``, autograd's error measured again before anything fails;
        ``rerun`` (manual as a function of the inputs) allows the third look, and a failure
        below float64 then says whether manual is wrong or less accurate (``_diagnosed``)."""
        verdict = self._looks(label, manual, rerun)
        if verdict.passed or rerun is None or self.dtype == torch.float64:
            return verdict
        noise = {j.name for j in verdict.failures if j.broke_noise_only}
        if not noise:
            return Verdict(verdict.label, verdict.judgements,
                           lambda failed: self._diagnosed(failed, rerun))
        # Judged by the algebra alone (module docstring); the diagnoses of what still fails
        # are kept, not taken again
        diagnosed = self._diagnosed(verdict, rerun)
        return _replaced(diagnosed, {j.name: Judgement(**{
            **j.__dict__, "passed": True,
            "how": f"{j.how}; off only where the rule asks no digit: {j.diagnosis}"})
            for j in diagnosed.failures if j.name in noise
            and j.diagnosis.startswith(LESS_ACCURATE) and j.ratio <= noise_ratio(self.dtype)})

    def _looks(self, label: str, manual: Mapping[str, object],
               rerun: Callable[[Tensors], Mapping[str, object]] | None) -> Verdict:
        if any(isinstance(m, torch.Tensor) and m.shape == self.autograd[k].shape
               and (~torch.isfinite(m) & torch.isfinite(self.autograd[k])).any()
               for k, m in manual.items() if k in self.autograd):
            self.rounded_errors()  # manual overflowed where autograd did not: could it have?
        # Autograd with float32's range only widens what is allowed where autograd gave up,
        # so it is run (a pass through Python per operation) only where that fails without it
        judged = functools.partial(judge, label, manual, self.autograd, self.truth, self.errors,
                                   held=self.held, overflowed=self.rounded_non_finite)
        first = judged()
        if any(GAVE_UP in (j.problem or "") for j in first.failures):
            first = judged(wide_range=self.wide_range)
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


def noise_ratio(dtype: torch.dtype) -> float:
    """How many times autograd's error a right form's may be where the rule asks no digit:
    ``K eps^-1/2`` (module docstring)."""
    return K * torch.finfo(dtype).eps ** -0.5


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
        return manual({k: own(t) for k, t in x.items()})

    got = copied(inputs)  # first: Case.verdict orders autograd's side by the backward's names
    return measure(autograd, inputs, held).judge(label, got, rerun=copied)
