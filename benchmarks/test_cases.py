"""Every case, manual against autograd: one group per case and device, ``<case>-<device>``.

Both sides run on the same inputs, at the case's own sizes, in float32 (what training runs
in). After timing, what each side returned is judged by handgrad's verdict (manual's result
as the manual side; autograd's, which must then match itself), so a benchmark that times a
wrong gradient fails.
"""

import torch

from handgrad import measure

DTYPE = torch.float32
SIDES = {"autograd": lambda case, inputs: case.reference(inputs),
         "manual": lambda case, inputs: case.manual(inputs)}


def timed_and_checked(bench, case, device, side):
    inputs = case.inputs(device, DTYPE)
    got = bench(f"{case.name}-{device}", side, lambda: SIDES[side](case, inputs),
                baselines=lambda: {"autograd": lambda: case.reference(inputs)})
    measure(case.reference, inputs).judge(f"{case.name}: what {side} timed", got).check()


def test_autograd(bench, case, device):
    """``case.reference``: the forward, then ``torch.autograd.grad`` through its graph."""
    timed_and_checked(bench, case, device, "autograd")


def test_manual(bench, case, device):
    """``case.manual``: the hand-derived gradients, which run the forward they need."""
    timed_and_checked(bench, case, device, "manual")
