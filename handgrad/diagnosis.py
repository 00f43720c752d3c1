"""Wrong or less accurate: what a failure below float64 is, from manual run again in float64.

A wrong gradient's error does not shrink with precision; a right one's does, as rounding
does. Manual, run again on the same inputs in float64, is right there if it passes the
float64 rule, or if its error there shrank by at least ``shrunk``: where autograd is exact
by structure (cs231n's ``probs - onehot`` against autograd through the row max's gradient)
the float64 rule is ulps at the result's scale, which a closed form that cancels at its
terms' scale cannot meet, and its error still shrinks from float32's 9.7e-9 to 4.7e-17.
"""

import torch

from handgrad.judgement import LESS_ACCURATE, Judgement


def shrunk(dtype: torch.dtype) -> float:
    """How much a rounding error shrinks, at least, from ``dtype`` to float64: the square
    root of their epsilons' ratio (2^-14.5 from float32, 2^-22.5 from bfloat16), half the
    way in orders of magnitude from "as rounding does" (the whole ratio) to "not at all"
    (1, a mistake in the algebra)."""
    return (torch.finfo(torch.float64).eps / torch.finfo(dtype).eps) ** 0.5


def diagnosis(low: Judgement, there: Judgement, dtype: torch.dtype) -> str:
    """Wrong or less accurate, from a failure in ``dtype`` (``low``) and the same manual
    judged again in float64 (``there``)."""
    name = str(dtype).removeprefix("torch.")
    if there.passed:
        return f"{LESS_ACCURATE} in {name} (right in float64)"
    if (not there.problem and not low.problem
            and there.err_manual <= shrunk(dtype) * low.err_manual):
        return (f"{LESS_ACCURATE} in {name} (right in float64: its error there, "
                f"{there.err_manual:.2e}, is {low.err_manual / there.err_manual:.2g} times "
                f"smaller, as a rounding error shrinks; a mistake would not)")
    return "wrong: off in float64 too, by " + (
        there.problem if there.problem else
        f"{there.err_manual:.2e}, {there.ratio:.3g}x autograd's own float64 rounding, an "
        f"error that did not shrink with precision")
