"""The MLP at N = 100 to 100000: every form of its backward beside the GEMM floor.

One group per device and size, ``mlp_relu_mse-<device>-N<size>``, holding ``autograd``,
``manual``, ``buffered``, ``broadcast`` (where it fits) and ``floor``; ``mlp_forms`` says
what each runs. Each form's result is judged by handgrad's verdict after it is timed (the
floor's three products as the gradients they are).
"""

from functools import lru_cache

import pytest

from benchmarks.mlp_forms import CASE, FORMS, SIZES, article_inputs, too_big
from handgrad import measure


@lru_cache(maxsize=1)  # the tests run size by size; keep one size's tensors at a time
def prepared(device: str, n: int):
    inputs = article_inputs(device, n)
    return inputs, measure(CASE.reference, inputs)


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
    inputs, measured = prepared(device, n)
    got = bench(f"{CASE.name}-{device}-N{n}", form, FORMS[form](inputs),
                baselines=lambda: baselines(device, n))
    judged = {k: measured.autograd[k] if k not in got else got[k] for k in measured.autograd}
    measured.judge(f"{CASE.name} N={n}: what {form} timed", judged).check()
