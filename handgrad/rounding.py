"""Random rounding: autograd run again with every rounding it makes drawn anew.

The verdict needs autograd's own error, and measures it (``handgrad.measure``) by moving
the inputs a few units in the last place: every rounding on the way then changes. Not
quite every one: a sum of terms that are equal at their precision rounds the same way
however the inputs move. In a GPT whose token embeddings are all 0 but one, the 1309
probabilities of the softmax are all ``exp(-3e-6)`` to the last bit at every nearby input,
their float64 sum comes out 3 ulps from 1 every time, and autograd, which takes the row
max's gradient through that sum, was 6.7e-19 from the exact gradient (60 digits, mpmath):
eight times the largest error the nearby inputs showed. The hand gradient was exact to
half an ulp, and failed.

``RandomRounding`` re-rolls those too, by stochastic rounding: inside it, every operation
on float32, bfloat16 or float16 tensors is computed from the same operands in float64, and
its result is rounded to its own dtype up or down at random, the nearer neighbour the
likelier. A result the dtype holds exactly stays exact (``x - x``, ``exp(0)``, a max), and
any other is off by less than one unit in the last place, as round-to-nearest's is, in a
direction drawn anew every time. The spread of such runs is the spread of the roundings
an algorithm can make, which a single machine's round-to-nearest only samples once. On
the cases' own draws its largest error over 8 runs is 0.05 to 2.8 times what the nearby
inputs measure; on the GPT above (run in float32, where float64 can be the truth) it is
1.7e-19 carried to float64.

Float64 itself has nothing wider to round from, so the verdict runs float64 cases in
float32 under it and carries the error up by float64's roundoff over float32's. Views and
operations that write into their operands run as they are.
"""

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

F64 = torch.float64


def stochastic_round(exact: torch.Tensor, dtype: torch.dtype,
                     generator: torch.Generator) -> torch.Tensor:
    """``exact`` (float64) rounded to ``dtype``, to the neighbour on either side with a
    probability that falls with its distance: exactly representable values are kept."""
    near = exact.to(dtype)
    gap = exact - near.to(F64)
    if not gap.any():  # held exactly: nothing to draw
        return near
    info = torch.finfo(dtype)
    _, exponent = torch.frexp(near.to(F64))
    spacing = torch.ldexp(torch.full_like(exact, info.eps), exponent - 1)
    spacing = spacing.clamp_min(info.smallest_normal * info.eps)  # the subnormals' spacing
    other = (near.to(F64) + torch.sign(gap) * spacing).to(dtype)
    draw = torch.rand(exact.shape, generator=generator, dtype=F64).to(exact.device)
    return torch.where((draw < gap.abs() / spacing) & torch.isfinite(exact), other, near)


def _upcast(x):
    return x.to(F64) if isinstance(x, torch.Tensor) and x.is_floating_point() else x


class RandomRounding(TorchDispatchMode):
    """Every operation on tensors below float64, stochastically rounded (module docstring).
    ``seed`` fixes the draws, so a run can be repeated."""

    def __init__(self, seed: int):
        super().__init__()
        self.generator = torch.Generator().manual_seed(seed)

    def _rounded(self, got, exact):
        if (isinstance(got, torch.Tensor) and got.is_floating_point() and got.dtype != F64
                and isinstance(exact, torch.Tensor) and exact.dtype == F64
                and exact.shape == got.shape):
            rounded = torch.empty_strided(got.shape, got.stride(), dtype=got.dtype,
                                          device=got.device)
            return rounded.copy_(stochastic_round(exact, got.dtype, self.generator))
        return got

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        got = func(*args, **kwargs)
        if func.is_view or func._schema.is_mutable:
            return got
        leaves, spec = tree_flatten(got)
        if not any(isinstance(t, torch.Tensor) and t.is_floating_point() and t.dtype != F64
                   for t in leaves):
            return got
        try:
            exact, exact_spec = tree_flatten(func(*tree_map(_upcast, args),
                                                  **tree_map(_upcast, kwargs)))
        except (RuntimeError, TypeError):  # an op with no float64 kernel: its own rounding
            return got
        if exact_spec != spec:
            return got
        return spec.unflatten([self._rounded(g, e) for g, e in zip(leaves, exact, strict=True)])
