"""Autograd's own error, measured: against the float64 truth below float64, and in float64
by its second difference, at the inputs or at inputs next to them (``handgrad.looks``
says when each is taken).

The second difference: autograd again at every nonzero input moved two units in the last
place up, then down. The exact gradient is linear over a step that small (its
second-order term is about 1e-32 of it), so half of ``a(x + d) + a(x - d) - 2 a(x)`` is the
spread of autograd's roundings, which change completely when the last bits of the inputs
do. Zeros stay zeros: an input that sits on a kink (a ReLU at exactly 0) stays there, so
the step never crosses one.
"""

from collections.abc import Callable, Mapping

import torch

from handgrad.nonfinite import largest, off
from handgrad.verdict import Tensors


def cast(inputs: Mapping[str, torch.Tensor], dtype: torch.dtype) -> Tensors:
    """Floating-point inputs in ``dtype``; integer ones (indices) as they are."""
    return {k: t.to(dtype) if t.is_floating_point() else t for k, t in inputs.items()}


def float_dtype(inputs: Mapping[str, torch.Tensor]) -> torch.dtype:
    dtypes = {t.dtype for t in inputs.values() if t.is_floating_point()}
    if len(dtypes) != 1:
        raise ValueError(f"inputs: expected one floating dtype, got {sorted(map(str, dtypes))}")
    return dtypes.pop()


def errors_against_truth(autograd: Callable[[Tensors], Tensors], inputs: Tensors,
                         ) -> tuple[Tensors, Tensors, dict[str, float], Tensors]:
    """Below float64: autograd, the truth, and autograd's largest error and its error entry
    by entry (NaN where either side is not finite), per tensor."""
    got, truth = autograd(inputs), autograd(cast(inputs, torch.float64))
    errors, offs = {}, {}
    for name, g in got.items():
        offs[name] = off(g, truth[name])
        errors[name] = largest(offs[name], offs[name].isfinite())
    return got, truth, errors, offs


def two_ulps(t: torch.Tensor) -> torch.Tensor:
    """Two units in the last place of every entry (0 for zeros), exactly representable:
    ``t + d`` and ``t - d`` are the same distance from ``t``."""
    _, exponent = torch.frexp(t)
    return torch.where(t == 0, 0, torch.ldexp(torch.ones_like(t), exponent - 52))


def second_difference(autograd: Callable[[Tensors], Tensors], inputs: Tensors,
                      at: Tensors | None = None) -> dict[str, float]:
    """In float64: half the largest second difference of autograd over a two-ulp step of
    every nonzero input, per tensor: its own rounding (see the module docstring)."""
    at = autograd(inputs) if at is None else at
    step = {k: two_ulps(t) for k, t in inputs.items() if t.is_floating_point()}
    up = autograd({**inputs, **{k: inputs[k] + d for k, d in step.items()}})
    down = autograd({**inputs, **{k: inputs[k] - d for k, d in step.items()}})
    errors = {}
    for name, a in at.items():
        d2 = up[name] + down[name] - 2 * a
        errors[name] = largest(d2.abs() / 2, torch.isfinite(d2))
    return errors


def nearby(inputs: Tensors, i: int) -> Tensors:
    """The inputs with every floating entry moved by up to two units in its last place
    (an exact zero by two of its tensor's largest entry, or of 1): the same problem, with
    every rounding on the way re-rolled, and no entry left exact by structure."""
    gen = torch.Generator().manual_seed(i)
    moved = {}
    for k, t in inputs.items():
        if t.is_floating_point():
            r = (torch.rand(t.shape, generator=gen, dtype=torch.float64) * 4 - 2).to(t.device)
            x = t.double()
            top = float(x.abs().max()) if x.numel() else 0.0
            size = torch.where(x == 0, top or 1.0, x.abs())
            t = (x + r * size * torch.finfo(t.dtype).eps).to(t.dtype)
        moved[k] = t
    return moved
