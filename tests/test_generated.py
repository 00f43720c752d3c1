"""Manual == autograd on generated shapes and values, not only the case's own draw.

hypothesis picks a size for every symbol in the case's ``SHAPES`` (1 included, so a
batch of one and every other unit axis come up) and the values of every input, as NumPy
arrays turned into tensors. A failure prints a ``@reproduce_failure`` blob that replays it.
"""

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

VALUES = st.floats(-4, 4, allow_nan=False, allow_subnormal=False, width=64)


@st.composite
def case_inputs(draw, case, max_size=6):
    dims = {symbol: draw(st.integers(1, max_size), label=symbol) for symbol in case.dims}
    inputs = {}
    for name, spec in case.shapes.items():
        shape = tuple(int(s) if s.isdigit() else dims[s] for s in spec.split())
        inputs[name] = torch.from_numpy(draw(hnp.arrays(np.float64, shape, elements=VALUES),
                                             label=name))
    return inputs


@given(data=st.data())
def test_manual_matches_autograd_on_generated_inputs(case, device, dtype, data):
    inputs = {k: t.to(device, dtype) for k, t in data.draw(case_inputs(case)).items()}
    case.assert_close(case.manual(inputs), case.reference(inputs))


def test_every_size_one(case, device, dtype):
    """The smallest inputs there are: every symbolic size 1, a batch of one."""
    inputs = case.inputs(device, dtype, **dict.fromkeys(case.dims, 1))
    case.assert_close(case.manual(inputs), case.reference(inputs))
