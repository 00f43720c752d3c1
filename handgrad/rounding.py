"""Random rounding: autograd run again with every rounding it makes drawn anew.

The verdict needs autograd's own error, and measures it (``handgrad.looks``) by moving
the inputs a few units in the last place: every rounding on the way then changes. Not
quite every one: a sum of terms that are equal at their precision rounds the same way
however the inputs move. In a GPT whose token embeddings are all 0 but one, the 1309
probabilities of the softmax are all ``exp(-3e-6)`` to the last bit at every nearby input,
their float64 sum comes out 3 ulps from 1 every time, and autograd, which takes the row
max's gradient through that sum, was 6.7e-19 from the exact gradient (60 digits, mpmath):
eight times the largest error the nearby inputs showed. The hand gradient of the time
was exact to half an ulp, and failed.

``RandomRounding`` re-rolls those too, by stochastic rounding: inside it, every operation
on float32, bfloat16 or float16 tensors is computed from the same operands in float64, and
its result is rounded to its own dtype up or down at random, the nearer neighbour the
likelier. A result the dtype holds exactly stays exact (``x - x``, ``exp(0)``, a max), and
any other is off by less than one unit in the last place, as round-to-nearest's is, in a
direction drawn anew every time; a float32 sum, in half the runs, lands where a kernel that
adds in turn in float32 does (``in_turn_float32``). The spread of such runs is the spread
of the roundings an algorithm can make, which one machine's round-to-nearest samples once. On
the cases' default draws the largest error over 8 runs is 0.26 to 3.4 times the largest
over 8 nearby inputs in float32 (0.11 to 2.2 with no sum taken in turn), and 0.06 to 3.8
times in bfloat16, tensor by tensor.

Float64 has nothing wider to round from, so there each result is moved to a neighbour at
random instead: down a quarter of the time, up a quarter. That moves exact results too,
so it can overstate the rounding a little. Nor does it reach inside a kernel, where most
of a long sum's rounding is: a matmul of equal terms rounds alike at every nearby input,
and its error depends on the order the kernel blocks it in, which another CPU chooses
otherwise. So float64 matmuls and sums (``REORDERED``) are also taken in another order
(``reordered``), in half the runs one term after another, as a plain loop or a BLAS gemv
takes them (Caffe's bias gradient, ``dout^T 1`` over 2048 rows of 1e-3, came out 60 times
further from the exact sum than autograd's blocked one; its folded ``d_x``, 512 equal
products a sum, 7.1 times autograd's blocked spread). In a float64 attention whose
weights were all equal, hand and autograd took the same 256-term sums in differently
blocked kernels, and their ``d_x`` came out 93 and 34 ulps from the exact value. Autograd's
second differences showed 19 ulps; its 8 runs that moved each result by an ulp came out 23
to 44 from the exact value, and with their sums reordered too, 18 to 95. On the cases'
default draws the largest of 8 runs is 0.75 to 3.5 times the largest over 8 nearby inputs
(55 tensors).
Operations that only select, move or negate (``EXACT``), views, and operations that write
into their operands run as they are, in every dtype. So does any operation on or giving a
tensor that is not a plain one (``_all_plain``): forward mode (``torch.func.jvp``, and
``torch.func.hessian`` through it) carries a zero tangent as a ZeroTensor, which has no
storage; computing on one from inside a dispatch mode takes the process down (torch 2.13,
a segmentation fault), and a zero is exact anyway. A transform's own layers are undone
before a dispatch mode sees an operation, so what is rounded is what the transform computes.
"""

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

F64 = torch.float64


def stochastic_round(exact: torch.Tensor, dtype: torch.dtype,
                     generator: torch.Generator) -> torch.Tensor:
    """``exact`` (float64) rounded to ``dtype``, to the neighbour on either side with a
    probability that falls with its distance: exactly representable values are kept."""
    near = exact.to(dtype)
    gap = exact - near.to(F64)
    if not gap.any():  # held exactly: nothing to draw
        return near
    other = torch.nextafter(near, torch.copysign(torch.full_like(near, torch.inf), gap.to(dtype)))
    spacing = (other.to(F64) - near.to(F64)).abs()
    draw = torch.rand(exact.shape, generator=generator, dtype=F64).to(exact.device)
    return torch.where(draw * spacing < gap.abs(), other, near)


# Operations that only select, move, fill or negate values: their results are some input's
# values, exact in any rounding, and a max that moved would no longer be found by the
# ``x == max`` of its own backward. And allocations (``empty``...): their memory is whatever
# was there, and drawing a rounding for it made two runs of one seed differ.
EXACT = frozenset({
    "abs", "amax", "amin", "cat", "clamp", "clamp_max", "clamp_min", "clone", "constant_pad_nd",
    "copy", "embedding", "empty", "empty_like", "empty_strided", "new_empty",
    "new_empty_strided", "expand", "fill", "flip", "full", "full_like", "gather", "index",
    "index_select", "masked_fill", "max", "maximum", "min", "minimum", "neg", "new_zeros",
    "ones", "ones_like", "relu", "repeat", "scalar_tensor", "select_backward",
    "slice_backward", "sort", "stack", "threshold_backward", "topk", "where", "zeros",
    "zeros_like", "_to_copy",
})


def moved_at_random(t: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Float64 ``t`` with each entry moved to its neighbour below a quarter of the time and
    to the one above a quarter of the time; zeros and non-finite entries kept."""
    draw = torch.rand(t.shape, generator=generator, dtype=F64).to(t.device)
    inf = torch.full_like(t, torch.inf)
    moved = torch.where(draw < 0.5, torch.nextafter(t, -inf), torch.nextafter(t, inf))
    return torch.where(((draw - 0.5).abs() > 0.25) & (t != 0) & torch.isfinite(t), moved, t)


# Sums whose order a kernel chooses (a BLAS blocks a matmul by the machine's cache and
# vector width): in float64 each is taken in another order (``reordered``).
REORDERED = frozenset({"mm", "bmm", "addmm", "sum"})
IN_TURN = 2**22  # the most products a matmul taken in turn forms: 32 MiB, thrice at most


def _order(n: int, generator: torch.Generator, device) -> tuple[int, torch.Tensor] | None:
    """A random order of ``n`` terms and a point to split it at; None for fewer than two."""
    if n < 2:
        return None
    return int(torch.randint(1, n, (), generator=generator)), torch.randperm(
        n, generator=generator).to(device)


def _summed(args, kwargs) -> tuple[torch.Tensor, list[int], bool, int] | None:
    """A plain ``sum``'s operand, summed axes, keepdim and its longest summed axis; None
    for a sum into another dtype or of a 0-d tensor."""
    x = args[0]
    dims = (args[1] if len(args) > 1 else None) or range(x.dim())  # none: every axis
    if x.dim() == 0 or kwargs.get("dtype") not in (None, x.dtype):
        return None
    dims = sorted(d % x.dim() for d in dims)
    return x, dims, args[2] if len(args) > 2 else False, max(dims, key=lambda d: x.shape[d])


def _all_but(x: torch.Tensor, dims: list[int], axis: int) -> torch.Tensor:
    """``x`` summed over ``dims`` but ``axis``, kept: what a sum in turn adds along."""
    others = [d for d in dims if d != axis]
    return x.sum(others, keepdim=True) if others else x


def in_turn_float32(args, kwargs, generator: torch.Generator) -> torch.Tensor | None:
    """A float32 sum as a kernel that adds its longest axis one term after another in
    float32 lands (inductor's reduction over rows, a plain loop), in float64: the exact
    partial sums, each rounded to float32 at random, their roundings carried to the end:
    the roundings inside a kernel, which one rounding of the exact sum leaves out.
    Inductor's sums over the 4096 rows of a float32 (4096, 256) tensor land 4 times further
    from the exact sums than torch's, on average. None where ``_summed`` finds no plain sum."""
    found = _summed(args, kwargs)
    if found is None:
        return None
    x, dims, keep, axis = found
    x = _all_but(x.to(F64), dims, axis)
    partial = x.cumsum(axis)
    carried = (stochastic_round(partial, torch.float32, generator).to(F64) - partial)
    total = partial.narrow(axis, x.shape[axis] - 1, 1) + carried.sum(axis, keepdim=True)
    return total.sum(dims, keep)  # the summed axes are all of size 1 now


def reordered(func, args, kwargs, generator: torch.Generator, in_turn: bool = False):
    """A float64 matmul or sum with its terms in another order: the summed axis permuted at
    random and split in two at a random point, the two partial results added last; with
    ``in_turn``, added one term after another instead (a matmul only up to ``IN_TURN``
    products, which it holds at once). The exact result is the same; the roundings are
    another kernel's. None where there is no other order (fewer than two terms) or the
    call is not the plain form."""
    if func.overloadpacket.__name__ == "sum":
        found = _summed(args, kwargs)
        if found is None:
            return None
        x, dims, keep, axis = found
        order = _order(x.shape[axis], generator, x.device)
        if order is None:
            return None
        cut, perm = order
        x = x.index_select(axis, perm)
        if in_turn:  # one term after another, as a plain loop or a gemv does
            x = _all_but(x, dims, axis)
            total = x.cumsum(axis).narrow(axis, x.shape[axis] - 1, 1)
            return total.sum(dims, keep)  # the remaining axes are all of size 1
        first, rest = x.tensor_split([cut], axis)
        return torch.sum(first, dims, keep) + torch.sum(rest, dims, keep)
    if kwargs or len(args) != (3 if func.overloadpacket.__name__ == "addmm" else 2):
        return None  # addmm's beta and alpha, or a form not known here
    a, b = args[-2:]
    order = _order(a.shape[-1], generator, a.device)
    if order is None:
        return None
    cut, perm = order
    a, b = a.index_select(-1, perm), b.index_select(-2, perm)
    if in_turn and a.numel() * b.shape[-1] <= IN_TURN:
        total = (a[..., :, :, None] * b[..., None, :, :]).cumsum(-2)[..., -1, :].contiguous()
        return total if len(args) == 2 else args[0] + total
    first = func(*args[:-2], a[..., :cut], b[..., :cut, :])  # addmm's bias added here
    return first + torch.matmul(a[..., cut:], b[..., cut:, :])


def _all_plain(x) -> bool:
    """Whether every tensor in nested tuples, lists and dicts (an operation's operands and
    results are no deeper) is dense, with storage of its own to compute on: not a
    ZeroTensor (forward mode's zero tangent), not sparse, not on the meta device. A pass
    through Python for every operation, so no pytree."""
    for leaf in x.values() if isinstance(x, dict) else x:
        if isinstance(leaf, torch.Tensor):
            if leaf.layout != torch.strided or leaf._is_zerotensor() or leaf.is_meta:
                return False
        elif isinstance(leaf, (tuple, list, dict)) and not _all_plain(leaf):
            return False
    return True


def untouchable(args, kwargs, got=None) -> bool:
    """Whether an operation has an operand or a result that is not plain (``_all_plain``)."""
    return not (_all_plain(args) and _all_plain(kwargs) and _all_plain((got,)))


def _upcast(x):
    """``x`` with every floating tensor in it, through tuples, lists and dicts, in float64."""
    if isinstance(x, (tuple, list)):
        return list(map(_upcast, x)) if isinstance(x, list) else tuple(map(_upcast, x))
    if isinstance(x, dict):
        return {k: _upcast(v) for k, v in x.items()}
    return x.to(F64) if isinstance(x, torch.Tensor) and x.is_floating_point() else x


class RandomRounding(TorchDispatchMode):
    """Every operation's floating-point results rounded at random (module docstring).
    ``seed`` fixes the draws, so a run can be repeated."""

    def __init__(self, seed: int):
        super().__init__()
        self.generator = torch.Generator().manual_seed(seed)
        # Every sum in turn in runs of odd seeds, none in the others, so half of any even
        # number of runs (ROUNDINGS): a coin per sum, drawn in the same place of the same
        # sequence at every draw of the same shapes, once left Caffe's 513-row bias sum
        # blocked in all 8 runs (21 times autograd's spread).
        self.in_turn = seed % 2 == 1

    def _rounded(self, got, exact):
        if not isinstance(got, torch.Tensor) or not got.is_floating_point():
            return got
        if got.dtype == F64:
            drawn = moved_at_random(got, self.generator)
        elif isinstance(exact, torch.Tensor) and exact.dtype == F64 and exact.shape == got.shape:
            drawn = stochastic_round(exact, got.dtype, self.generator)
        else:
            return got
        rounded = torch.empty_strided(got.shape, got.stride(), dtype=got.dtype,
                                      device=got.device)
        return rounded.copy_(drawn)

    def _exact(self, func, args, kwargs):
        """The operation again in float64, or None where it has no float64 kernel; a float32
        sum, in runs that take sums in turn, where one taken so lands (``in_turn_float32``)."""
        if (func.overloadpacket.__name__ == "sum" and args[0].dtype == torch.float32
                and self.in_turn):
            in_turn = in_turn_float32(args, kwargs, self.generator)
            if in_turn is not None:
                return in_turn
        try:
            return func(*_upcast(args), **_upcast(kwargs))
        except (RuntimeError, TypeError):
            return None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if untouchable(args, kwargs):
            return func(*args, **kwargs)
        got = None
        if func.overloadpacket.__name__ in REORDERED and all(
                t.dtype == F64 for t in (*args, *kwargs.values())
                if isinstance(t, torch.Tensor) and t.is_floating_point()):
            got = reordered(func, args, kwargs, self.generator, self.in_turn)
        got = func(*args, **kwargs) if got is None else got
        if (func.is_view or func._schema.is_mutable
                or func.overloadpacket.__name__ in EXACT or untouchable((), {}, got)):
            return got
        if isinstance(got, torch.Tensor):  # most operations: one result, no pytree
            if not got.is_floating_point():
                return got
            return self._rounded(got, None if got.dtype == F64 else
                                 self._exact(func, args, kwargs))
        leaves, spec = tree_flatten(got)
        floating = [t for t in leaves if isinstance(t, torch.Tensor) and t.is_floating_point()]
        if not floating:
            return got
        exact = None
        if any(t.dtype != F64 for t in floating):
            exact = self._exact(func, args, kwargs)
        exact_leaves, exact_spec = tree_flatten(exact)
        if exact_spec != spec:
            exact_leaves = [None] * len(leaves)
        return spec.unflatten([self._rounded(g, e) for g, e in zip(leaves, exact_leaves,
                                                                   strict=True)])
