"""Where some entry is NaN or inf: which entries the verdict judges, and how (the rules are
listed in ``handgrad.verdict``'s docstring, each with the draw that once failed)."""

import torch

OVERFLOWED = "non-finite where autograd's is finite"  # a problem's words for manual's overflow


def largest(diff: torch.Tensor, mask: torch.Tensor) -> float:
    """The largest entry of ``diff`` where ``mask`` holds; 0 where it holds nowhere."""
    return float(torch.where(mask, diff, 0).max()) if mask.any() else 0.0


def off(got: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """``|got - truth|`` in float64, NaN where either is not finite."""
    a = got.to(truth.device, torch.float64)
    d = (a - truth).abs()
    return torch.where(torch.isfinite(a) & torch.isfinite(truth), d, torch.nan)


def at_the_edge(manual: torch.Tensor, autograd: torch.Tensor, ulps: float) -> torch.Tensor:
    """Where one side overflowed to inf and the other is within ``ulps`` ulps of the
    dtype's largest number, with the same sign: the truth sits at the edge of the range,
    and rounding decided which way each side fell. Not a disagreement."""
    info = torch.finfo(manual.dtype)
    edge = info.max * (1 - ulps * info.eps)
    same_sign = torch.sign(manual) == torch.sign(autograd)
    one_inf = torch.isinf(manual) ^ torch.isinf(autograd)
    return one_inf & same_sign & (manual.abs() >= edge) & (autograd.abs() >= edge)


def sorted_out(manual, autograd, m, a, t, error: float | None, overflowed, k: float,
               ulps: float):
    """``(text, index)`` of a disagreement on finiteness, or the masks of the entries judged
    by the ratio rule (manual's, autograd's) and of those where autograd gave up. ``m``,
    ``a``, ``t``: both sides and the truth in float64; ``error``: autograd's own error where
    measured elsewhere; ``overflowed``: where autograd went non-finite under random
    rounding; ``k``, ``ulps``: the verdict's ratio and floor."""
    manual_nf, autograd_nf, truth_nf = ~torch.isfinite(m), ~torch.isfinite(a), ~torch.isfinite(t)
    edge = at_the_edge(manual, autograd, ulps).cpu()
    # An inf of the truth's sign where the truth, moved as far as the rule allows (k times
    # autograd's error), is past the dtype's largest number: the allowed answer, rounded.
    allowed = k * (error if error is not None else largest((a - t).abs(), ~autograd_nf & ~truth_nf))
    top = torch.finfo(manual.dtype).max
    edge |= torch.isinf(m) & (t.abs() + allowed > top) & (torch.sign(m) == torch.sign(t))
    if overflowed is not None:  # autograd too went non-finite there, rounded another way
        edge |= overflowed.cpu()
    for where, text in ((autograd_nf & truth_nf & ~manual_nf, "finite where autograd's is not"),
                        (manual_nf & ~autograd_nf & ~edge, OVERFLOWED)):
        if where.any():
            index = tuple(int(i) for i in where.nonzero()[0])
            return (f"manual is {text}: at index {index} manual {float(m[index])}, "
                    f"autograd {float(a[index])}", index)
    judged_m, judged_a = ~manual_nf & ~truth_nf, ~autograd_nf & ~truth_nf
    return judged_m, judged_a, judged_m & autograd_nf
