"""The opinion on inputs hypothesis drew (``checks.test_generated_shapes``): a mistake fails,
and a right form that only loses digits at the drawn values is a warning.

Hypothesis draws values across magnitudes and keeps what fails, so it finds the values where
one formulation's rounding loses digits another's keeps: at logits ``[10.96, 0]``, cs231n's
``probs - 1`` cancels in float32 to 0.5 % of the gradient, 7300 times autograd's error,
where autograd, through the row max's gradient, subtracts the other ``probs`` instead;
a float16 product below its normal range; 256 equal float64 products summed in turn, 32
ulps from the exact sum where autograd's 256 terms of 4.5 come to 0.7 ulp. That is how the form
rounds at that value, not its algebra. So a failure on a drawn input set is a
``LessAccurateWarning`` instead, with the verdict's whole explanation, where:

- every failure is one rounding can make: a finite error, an overflow where autograd stays
  finite, a finite result where autograd gave up (not a shape or a type, nor a finite value
  where the truth too is NaN or inf);
- every failure is right in float64 (``Verdict.only_less_accurate``). In float64, where
  nothing is wider, the diagnosis runs the other way: the drawn values rounded to float32,
  and the error must have shrunk from there to float64 as rounding does (``diagnosis``), by
  2^14.5 or more; a mistake is off by as much in both (a GELU's derivative cut to 1 past
  ``x = 6``, 1.8e-9 off in either), and a float32 run that is exact tells nothing;
- the case's own values (standard normal) at the drawn sizes pass in the drawn dtype: a
  mistake tied to a size (a kernel's tile edge) fails there, and so does a bias in one
  dtype (right in float64) or a form that loses digits, wherever such values show it.

Anything else fails as any verdict does. ``-W error::handgrad.LessAccurateWarning``, on the
command line or in ``addopts`` (the plugin's filter comes after a project's ini entries),
makes the warning a failure.
"""

import warnings

import torch

from handgrad.case import Case, dtype_name
from handgrad.diagnosis import diagnosis
from handgrad.judgement import GAVE_UP, LESS_ACCURATE, LessAccurateWarning, Verdict
from handgrad.nonfinite import OVERFLOWED
from handgrad.opinions import all_hold, excused
from handgrad.own_error import cast
from handgrad.shapes import check
from handgrad.verdict import Tensors


def generated_holds(case: Case, form: str, device, dtype: torch.dtype, inputs: Tensors) -> None:
    """Judge ``form`` on the drawn ``inputs``: passes, warns (module docstring) or raises
    as ``opinions.all_hold`` does (an opted-out form's overflow is ``Excused`` first)."""
    verdict = case.verdict(inputs, form, draw="generated draw")
    if (verdict.passed or excused(case, form, dtype, [verdict])
            or not _only_rounding(case, form, inputs, verdict)):
        all_hold([verdict], case, form, dtype)
        return
    own = case.verdict(case.inputs(device, dtype, **check(case.shapes, **inputs)), form,
                       draw="the case's own values at the drawn sizes")
    if not own.passed:  # its failure first, unless only it is an opted-out overflow
        all_hold([own, verdict], case, form, dtype)
    wider = ("its error 2^14.5 times smaller than in float32 or more" if dtype == torch.float64
             else "right in float64")
    warnings.warn(LessAccurateWarning(
        f"{case.name} [{device}, {dtype_name(dtype)}] {form}: less accurate than autograd at "
        f"the drawn values only ({wider}, and as accurate on the case's own values at the "
        f"same sizes):\n{verdict.explain()}"), stacklevel=2)


def _only_rounding(case: Case, form: str, inputs: Tensors, verdict: Verdict) -> bool:
    """Whether each failure of ``verdict`` is one rounding can make, of a form right in
    float64; in float64, whose error shrank from float32's as rounding does (module
    docstring)."""
    if not all(j.problem is None or GAVE_UP in j.problem or OVERFLOWED in j.problem
               for j in verdict.failures):
        return False
    if verdict.failures[0].dtype != torch.float64:
        return verdict.only_less_accurate
    try:  # a form with no float32 path (a FunctionCase declaring float64 alone) cannot tell
        low = case.verdict(cast(inputs, torch.float32), form, draw="generated draw in float32")
    except Exception:  # whatever refused it, the float64 failure stands
        return False
    narrow = {j.name: j for j in low.judgements}
    return all(diagnosis(narrow[j.name], j, torch.float32).startswith(LESS_ACCURATE)
               for j in verdict.failures)
