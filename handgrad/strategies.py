"""Inputs for a case drawn by hypothesis: sizes across orders of magnitude, and values.

Every size symbol is drawn log-uniformly (first an octave, then a size in it) up to what
is left of ``MAX_ELEMENTS``, the product of all sizes, so a draw of 1 and a draw in the
thousands are both common and no draw takes long; or it takes a size already drawn for
another symbol, so that distinct symbols are often equal. An input's values are one fill
value and a few others at places of their own (``values``), times one magnitude per input
from 1e-3 to 1e3; integer inputs (indices) likewise, over their range.
"""

import functools
import math

import numpy as np
import torch
from hypothesis import strategies as st

from handgrad.case import Case
from handgrad.draws import MAX_ELEMENTS

VALUES = st.floats(-4, 4, allow_nan=False, allow_subnormal=False, width=64)
MAGNITUDES = st.sampled_from([1e-3, 1e-1, 1.0, 1e1, 1e3])
BOOLEANS, ENTRIES, SEEDS = st.booleans(), st.integers(0, 2**16 - 1), st.integers(0, 2**32 - 1)


@functools.cache
def _integers(low: int, high: int) -> st.SearchStrategy:
    """``st.integers``, made (and validated by hypothesis) once a range, not every draw."""
    return st.integers(low, high)


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
        if ties and draw(BOOLEANS, label=f"{symbol} ties"):
            size = draw(st.sampled_from(ties), label=symbol)
        else:
            octave = draw(_integers(least.bit_length() - 1, most.bit_length() - 1),
                          label=f"{symbol} octave")
            size = draw(_integers(max(2**octave, least), min(2 ** (octave + 1) - 1, most)),
                        label=symbol)
        drawn[symbol] = size
        left //= size
    return drawn


def _floats(rng: np.random.Generator, count: int) -> np.ndarray:
    return rng.uniform(-4, 4, count)


@st.composite
def values(draw, shape: tuple[int, ...], fill: st.SearchStrategy, others=_floats) -> np.ndarray:
    """An array of ``shape``: one ``fill`` value, and about ``sqrt(n)`` entries (most of a
    small array) of their own, drawn with their places from a seed. Constant rows, ties
    and zeros are common, and a failure shrinks to a constant array of a simple value.
    Four hypothesis choices an array: its own arrays make three an entry (go on, where,
    what), which made drawing most of a generated-shape test's time."""
    n = math.prod(shape)
    mean = min(0.9 * n, max(10.0, math.sqrt(n)))  # as hypothesis's own arrays draw
    u = draw(ENTRIES, label="entries") / 2**16  # a geometric count
    count = min(n, int(math.log1p(-u) / math.log(mean / (mean + 1))))
    rng = np.random.default_rng(draw(SEEDS, label="seed"))
    array = np.full(n, draw(fill, label="fill"))
    array[rng.choice(n, count, replace=False)] = others(rng, count)
    return array.reshape(shape)


def _ids(rng: np.random.Generator, count: int, high: int) -> np.ndarray:
    return rng.integers(0, high, count)


@functools.lru_cache(maxsize=4096)
def _array(shape: tuple[int, ...], high: int | None = None) -> st.SearchStrategy:
    """``values`` for ``shape``, floats or ids below ``high``: made once a shape."""
    if high is None:
        return values(shape, VALUES)
    return values(shape, _integers(0, high - 1), functools.partial(_ids, high=high))


@st.composite
def case_inputs(draw, case: Case, device="cpu", dtype=torch.float64):
    """Every input of ``case``, on ``device`` in ``dtype`` (indices stay integer)."""
    dims = draw(sizes(case))
    inputs = {}
    for name in case.shapes:
        shape = case.shape(name, dims)
        if name in case.indices:
            ids = _array(tuple(shape), dims[case.indices[name]])
            inputs[name] = torch.from_numpy(draw(ids, label=name)).to(device)
        else:
            drawn = draw(_array(tuple(shape)), label=name)
            scale = draw(MAGNITUDES, label=f"{name} magnitude")
            inputs[name] = (torch.from_numpy(drawn) * scale).to(device, dtype)
    return inputs
