"""The MLP at N = 100 to 100000: every form of its backward beside the GEMM floor.

One group per device and size, ``mlp_relu_mse-<device>-N<size>``, holding ``autograd``,
``manual``, ``buffered``, ``broadcast`` (where it fits) and ``floor``; ``mlp_forms`` says
what each runs. Each form's result is checked after it is timed: against autograd's
gradients, and autograd's against the manual ones.
"""

from functools import lru_cache

import pytest
import torch

from benchmarks.mlp_forms import CASE, DTYPE, FORMS, SIZES, tolerance, too_big


@lru_cache(maxsize=1)  # the tests run size by size; keep one size's tensors at a time
def prepared(device: str, n: int):
    inputs = CASE.inputs(device, DTYPE, N=n)
    return inputs, {"autograd": CASE.reference(inputs), "manual": CASE.manual(inputs)}


@lru_cache(maxsize=1)
def baselines(device: str, n: int):
    """The calls every form of a group is timed in turn with, for the ratios."""
    inputs, _ = prepared(device, n)
    return {"autograd": FORMS["autograd"](inputs), "floor": FORMS["floor"](inputs)}


@pytest.fixture(scope="module", autouse=True)
def _free_tensors():
    yield
    prepared.cache_clear()
    baselines.cache_clear()


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("n", SIZES, ids=lambda n: f"N{n}")
def test_mlp_scaling(bench, device, n, form):
    if reason := too_big(form, n):
        pytest.skip(reason)
    inputs, expected = prepared(device, n)
    got = bench(f"{CASE.name}-{device}-N{n}", form, FORMS[form](inputs),
                baselines=lambda: baselines(device, n))
    want = expected["manual" if form == "autograd" else "autograd"]
    torch.testing.assert_close(got, {name: want[name] for name in got}, **tolerance(form, n))
