"""Every case, manual against eager and compiled autograd: one group per case and device,
``<case>-<device>``.

The sides run on the same inputs, at the case's own sizes, in float32 (what training runs
in). After timing, what each side returned is judged by handgrad's verdict (manual's result
as the manual side; autograd's, which must then match itself), so a benchmark that times a
wrong gradient fails.
"""

import pytest
import torch

from benchmarks.compiled import CannotCompile, compiled_reference
from handgrad import measure

DTYPE = torch.float32
_COMPILED: dict[tuple[str, str], object] = {}  # the group's: one case at a time


def compiled(case, inputs):
    """The case's compiled reference, compiled once a group (``CannotCompile`` kept)."""
    key = (case.name, next(iter(inputs.values())).device.type)
    if key not in _COMPILED:
        _COMPILED.clear()
        try:
            _COMPILED[key] = compiled_reference(case, inputs)
        except CannotCompile as reason:
            _COMPILED[key] = reason
    return _COMPILED[key]


def baselines(case, inputs) -> dict:
    call = compiled(case, inputs)
    return {"autograd": lambda: case.reference(inputs),
            **({} if isinstance(call, CannotCompile) else {"compiled": call})}


SIDES = {"autograd": lambda case, inputs: lambda: case.reference(inputs),
         "manual": lambda case, inputs: lambda: case.manual(inputs),
         "compiled": compiled}


def timed_and_checked(bench, case, device, side):
    inputs = case.inputs(device, DTYPE)
    call = SIDES[side](case, inputs)
    if isinstance(call, CannotCompile):
        pytest.skip(str(call))
    got = bench(f"{case.name}-{device}", side, call, baselines=lambda: baselines(case, inputs))
    measure(case.reference, inputs).judge(f"{case.name}: what {side} timed", got).check()


def test_autograd(bench, case, device):
    """``case.reference``: the forward, then ``torch.autograd.grad`` through its graph."""
    timed_and_checked(bench, case, device, "autograd")


def test_compiled(bench, case, device):
    """``case.reference`` with its forward ``torch.compile``d (``benchmarks.compiled``)."""
    timed_and_checked(bench, case, device, "compiled")


def test_manual(bench, case, device):
    """``case.manual``: the hand-derived gradients, which run the forward they need."""
    timed_and_checked(bench, case, device, "manual")
