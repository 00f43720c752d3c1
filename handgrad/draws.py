"""The inputs a case is judged on, beyond its default draw.

A derivation can be right on one draw and wrong on another: only above some size (a
reduction split in blocks), only where two sizes are equal (a sum over the wrong one of
two axes), only for a non-contiguous input or one laid out unlike another (a kernel that
reads the storage as if contiguous, or with another tensor's strides), only at large
magnitudes (an ``exp`` that overflows where the stable form does not). Each function here
turns a case's inputs into labelled variants of them; ``handgrad.checks`` judges every one
by the verdict.
"""

import itertools
import math
from collections.abc import Callable, Iterator

import torch

from handgrad.case import Case
from handgrad.verdict import Tensors

Draw = tuple[str, Tensors]
MAGNITUDES = (1e-3, 1e3)
MAX_ELEMENTS = 2**14  # the product of every size symbol of a drawn shape


def default(case: Case, device, dtype) -> Iterator[Draw]:
    yield "default draw", case.inputs(device, dtype)


def large(case: Case, device, dtype) -> Iterator[Draw]:
    sizes = ", ".join(f"{k}={v}" for k, v in case.large_dims.items())
    yield f"large draw ({sizes})", case.inputs(device, dtype, seed=1, **case.large_dims)


def size_one(case: Case, device, dtype) -> Iterator[Draw]:
    """Every size at its least: 1, or ``Case.least``'s size where the case names one."""
    raised = ", ".join(f"{symbol}={n}" for symbol, n in case.least.items())
    label = f"every size at its least ({raised + ', the others 1' if raised else '1'})"
    yield label, case.inputs(device, dtype, seed=2, **case.smallest)


def common_size(case: Case) -> dict[str, int]:
    """Every symbol at one size, the largest whose product stays within ``MAX_ELEMENTS``
    (a symbol whose ``least`` is above it, or ``most`` below, takes that instead)."""
    def at(n: int) -> dict[str, int]:
        return {s: min(max(n, least), case.most.get(s, n)) for s, least in case.smallest.items()}

    n = round(MAX_ELEMENTS ** (1 / len(case.dims)))
    while n > 2 and math.prod(at(n).values()) > MAX_ELEMENTS:
        n -= 1
    while at(n + 1) != at(n) and math.prod(at(n + 1).values()) <= MAX_ELEMENTS:
        n += 1
    return at(n)


def equal_sizes(case: Case, device, dtype) -> Iterator[Draw]:
    """Every size symbol at one common size: a gradient reduced over the wrong one of two
    axes has the right shape only where their sizes are equal, and only there can its
    values be judged wrong (a sum over the batch where the hidden units were meant)."""
    sizes = common_size(case)
    label = ", ".join(f"{k}={v}" for k, v in sizes.items())
    yield f"equal sizes ({label})", case.inputs(device, dtype, seed=6, **sizes)


def transposed(t: torch.Tensor) -> torch.Tensor:
    """The same values, stored column-major (the last two axes swapped in memory)."""
    return t.mT.contiguous().mT if t.dim() >= 2 else strided(t)


def strided(t: torch.Tensor) -> torch.Tensor:
    """The same values, every other element of a larger buffer, from its second element."""
    if t.dim() == 0:
        return t
    storage = t.new_zeros((*t.shape[:-1], 2 * t.shape[-1] + 1))
    view = storage[..., 1::2]
    view.copy_(t)
    return view


def expanded(t: torch.Tensor) -> torch.Tensor:
    """A stride-0 view: the first slice along the first axis longer than 1, repeated. The
    values change (every slice equals the first); the verdict's truth sees the same ones."""
    axis = next((a for a, n in enumerate(t.shape) if n > 1), None)
    if axis is None:
        return t
    return t.narrow(axis, 0, 1).expand_as(t)


LAYOUTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "contiguous": torch.Tensor.contiguous,
    "transposed storage": transposed,
    "a strided slice with an offset": strided,
    "an expanded view (stride 0)": expanded,
}
# An input's layout in each of four rounds: one of the 24 orders of the four layouts, the
# first four the rounds of a Latin square, (i + r) mod 4. Every input takes every layout,
# and two inputs, both orders of the same four, differ in at least two rounds.
ORDERS = [tuple((i + r) % 4 for r in range(4)) for i in range(4)]
ORDERS += [order for order in itertools.permutations(range(4)) if order not in ORDERS]


def orders(count: int) -> list[tuple[int, ...]]:
    """The layouts of ``count`` inputs round by round (``ORDERS``); past 24 inputs, four
    rounds more for each further digit of the input's number in base 24."""
    blocks = 1
    while len(ORDERS) ** blocks < count:
        blocks += 1
    return [sum((ORDERS[i // len(ORDERS) ** b % len(ORDERS)] for b in range(blocks)), ())
            for i in range(count)]


def layouts(case: Case, device, dtype) -> Iterator[Draw]:
    """Each input (the grad_output and integer indices too) in a layout of its own, chosen
    independently of the others' and contiguous among them, over rounds in which every
    input meets every layout and every two inputs differ: a backward that reads one tensor
    with another's strides (``v`` with ``x``'s) fails where their layouts differ."""
    inputs = case.inputs(device, dtype, seed=3)
    names, kinds = list(inputs), list(LAYOUTS)
    rows = orders(len(names))
    for r in range(len(rows[0])):
        which = {name: kinds[row[r]] for name, row in zip(names, rows, strict=True)}
        label = "; ".join(f"{kind}: {', '.join(n for n in names if which[n] == kind)}"
                          for kind in kinds if kind in which.values())
        yield f"layouts, round {r + 1}: {label}", {k: LAYOUTS[which[k]](t)
                                                   for k, t in inputs.items()}


def floating(case: Case, inputs: Tensors) -> list[str]:
    return [k for k, t in inputs.items() if t.is_floating_point()]


def magnitudes(case: Case, device, dtype) -> Iterator[Draw]:
    """One input at a time scaled by 1e-3 and by 1e3, the others as drawn (small sizes:
    what overflows here is the values, and each input is tried twice)."""
    inputs = case.inputs(device, dtype, seed=4, **case.small_dims)
    for scale in MAGNITUDES:
        for name in floating(case, inputs):
            yield f"{name} times {scale:g}", {**inputs, name: inputs[name] * scale}


def non_finite(case: Case, device, dtype) -> Iterator[Draw]:
    """NaN, then inf, in the first entry of one input at a time."""
    inputs = case.inputs(device, dtype, seed=5, **case.small_dims)
    for value in (float("nan"), float("inf")):
        for name in floating(case, inputs):
            spoilt = inputs[name].clone()
            spoilt.view(-1)[0] = value
            yield f"{value} in {name}'s first entry", {**inputs, name: spoilt}


def extremes(case: Case, device, dtype) -> Iterator[Draw]:
    """Every floating input at once times 1e-3, then 1e3, then with NaN, then inf, in its
    first entry: what a clamp or clean-up in place, of any input, acts on (four input sets
    where ``magnitudes`` and ``non_finite`` take four an input)."""
    inputs = case.inputs(device, dtype, seed=5, **case.small_dims)
    names = floating(case, inputs)
    for scale in MAGNITUDES:
        yield f"every input times {scale:g}", {**inputs, **{k: inputs[k] * scale for k in names}}
    for value in (float("nan"), float("inf")):
        spoilt = {k: inputs[k].clone() for k in names}
        for t in spoilt.values():
            t.view(-1)[0] = value
        yield f"{value} in every input's first entry", {**inputs, **spoilt}


DRAWS = {"default": default, "large": large, "size one": size_one,
         "equal sizes": equal_sizes, "layouts": layouts, "magnitudes": magnitudes,
         "non-finite": non_finite, "extremes": extremes}
