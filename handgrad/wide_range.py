"""Float16 and bfloat16 arithmetic with float32's range: ``WideRange`` rounds every
float32 result to the dtype's precision (``in_precision``) and lets nothing overflow, for
where autograd gave up in the dtype itself (``handgrad.looks``)."""

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

from handgrad.rounding import untouchable

# Float32's significand has 23 bits after the point; these dtypes keep 10 and 7 of them.
DROPPED_BITS = {torch.float16: 13, torch.bfloat16: 16}


def in_precision(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Float32 ``x`` rounded to the nearest number of ``dtype``'s precision (its significand,
    and its subnormals' spacing near 0), but with float32's range: nothing overflows.
    On the bits: a float's magnitude is monotone in its pattern read as an integer, so
    adding half the dropped bits' weight (one less, plus the last kept bit: ties to even, as
    the hardware rounds) and clearing them rounds the significand; a carry moves the
    exponent up, as rounding up to the next power of two does."""
    drop = DROPPED_BITS[dtype]
    bits = x.view(torch.int32)
    bits = (bits + ((1 << (drop - 1)) - 1) + ((bits >> drop) & 1)) & ~((1 << drop) - 1)
    small = x.abs() < torch.finfo(dtype).smallest_normal
    return torch.where(small, x.to(dtype).to(x.dtype),
                       torch.where(x.isfinite(), bits.view(torch.float32), x))


class WideRange(TorchDispatchMode):
    """Float32 operations, each result rounded to ``dtype``'s precision without its range
    (``in_precision``): float16 arithmetic that cannot overflow. Where float16 autograd's
    gradient is NaN (a GELU's ``0 * inf``) and the float64 one finite, the run inside this
    shows how far float16's rounding alone takes autograd there."""

    def __init__(self, dtype: torch.dtype):
        super().__init__()
        self.dtype = dtype

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        got = func(*args, **(kwargs or {}))
        if func.is_view or func._schema.is_mutable or untouchable(args, kwargs, got):
            return got
        return tree_map(lambda t: in_precision(t, self.dtype) if isinstance(t, torch.Tensor)
                        and t.dtype == torch.float32 else t, got)
