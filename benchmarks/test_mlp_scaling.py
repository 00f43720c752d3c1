"""The MLP at N = 100 to 100000: every form of its backward beside the GEMM floor.

One group per device and size, ``mlp_relu_mse-<device>-N<size>``, holding ``autograd``,
``manual``, ``buffered``, ``broadcast`` (where it fits) and ``floor``; ``mlp_forms`` says
what each runs. Each form's result is judged by handgrad's verdict after it is timed (the
floor's three products as the gradients they are); ``sweep`` does both.
"""

import pytest

from benchmarks import mlp_forms, sweep


@pytest.mark.parametrize("form", mlp_forms.FORMS)
@pytest.mark.parametrize("n", mlp_forms.SIZES, ids=lambda n: f"N{n}")
def test_mlp_scaling(bench, device, n, form):
    sweep.timed_and_judged(bench, mlp_forms, device, n, form)
