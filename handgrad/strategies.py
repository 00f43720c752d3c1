"""Inputs for a case drawn by hypothesis: sizes across orders of magnitude, and values.

Every size symbol is drawn log-uniformly (first an octave, then a size in it) up to what
is left of ``MAX_ELEMENTS``, the product of all sizes, so a draw of 1 and a draw in the
thousands are both common and no draw takes long; or it takes a size already drawn for
another symbol, so that distinct symbols are often equal. Values come from hypothesis
element by element (so it can shrink a failure to a few simple numbers, and tries 0, ties
and repeats), times one magnitude per input from 1e-3 to 1e3. Integer inputs (indices) are
drawn over their range.
"""

import functools
import math

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from handgrad.case import Case
from handgrad.draws import MAX_ELEMENTS

VALUES = st.floats(-4, 4, allow_nan=False, allow_subnormal=False, width=64)
MAGNITUDES = st.sampled_from([1e-3, 1e-1, 1.0, 1e1, 1e3])


@st.composite
def sizes(draw, case: Case) -> dict[str, int]:
    """A size for every symbol, from its ``case.least`` to its cap in ``case.most``, their
    product at most ``MAX_ELEMENTS`` (less what the symbols still to come need for their
    least). Often a symbol takes a size another has taken, where one fits: a
    gradient reduced over the wrong one of two axes has the right shape only when the two
    are equal."""
    drawn: dict[str, int] = {}
    left = MAX_ELEMENTS
    order = draw(st.permutations(list(case.dims)))  # no symbol always gets the most
    for i, symbol in enumerate(order):
        least = case.smallest[symbol]
        kept = math.prod(case.smallest[s] for s in order[i + 1:])
        most = max(least, min(left // kept, case.most.get(symbol, left)))
        ties = sorted({n for n in drawn.values() if least <= n <= most})
        if ties and draw(st.booleans(), label=f"{symbol} ties"):
            size = draw(st.sampled_from(ties), label=symbol)
        else:
            octave = draw(st.integers(least.bit_length() - 1, most.bit_length() - 1),
                          label=f"{symbol} octave")
            size = draw(st.integers(max(2**octave, least), min(2 ** (octave + 1) - 1, most)),
                        label=symbol)
        drawn[symbol] = size
        left //= size
    return drawn


@functools.lru_cache(maxsize=4096)
def _array(shape: tuple[int, ...], high: int | None = None) -> st.SearchStrategy:
    """Float values for ``shape``, or indices below ``high``: one strategy per shape, made
    (and validated by hypothesis) once, not at every draw."""
    if high is None:
        return hnp.arrays(np.float64, shape, elements=VALUES)
    return hnp.arrays(np.int64, shape, elements=st.integers(0, high - 1))


@st.composite
def case_inputs(draw, case: Case, device="cpu", dtype=torch.float64):
    """Every input of ``case``, on ``device`` in ``dtype`` (indices stay integer)."""
    dims = draw(sizes(case))
    inputs = {}
    for name in case.shapes:
        shape = case.shape(name, dims)
        if name in case.indices:
            values = draw(_array(tuple(shape), dims[case.indices[name]]), label=name)
            inputs[name] = torch.from_numpy(values).to(device)
        else:
            values = draw(_array(tuple(shape)), label=name)
            scale = draw(MAGNITUDES, label=f"{name} magnitude")
            inputs[name] = (torch.from_numpy(values) * scale).to(device, dtype)
    return inputs
