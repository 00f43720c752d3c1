"""Parametrises every test over case x device x dtype, and pins the numerics down.

A test that takes a ``case``, ``device`` or ``dtype`` argument runs once per registered
case, per device and per dtype, with ids such as ``[mlp_relu_mse-cpu-float32]``. ``cuda``
is always a parameter; without a GPU it is skipped with a reason that ``-ra`` prints.
"""

import os

import pytest
import torch
from hypothesis import settings

from cases import CASES
from cases.report import DTYPES

# float32 matmuls on CUDA stay float32: no TF32, which would round inputs to 10 bits.
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
# The same numbers on every run, CUDA included (cuBLAS needs a fixed workspace for that).
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
torch.use_deterministic_algorithms(True)

# Generated-shape tests: "ci" is the default (pytest --hypothesis-profile=dev for more).
settings.register_profile("ci", max_examples=25, derandomize=True, deadline=None,
                          print_blob=True)
settings.register_profile("dev", max_examples=500, deadline=None, print_blob=True)
settings.load_profile("ci")

DEVICES = (
    "cpu",
    pytest.param("cuda", marks=[
        pytest.mark.cuda,
        pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA: no GPU on this machine"),
    ]),
)


# trylast: a test's own @pytest.mark.parametrize (whose ids name the case) leads its ids.
@pytest.hookimpl(trylast=True)
def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case", CASES, ids=lambda c: c.name)
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", DEVICES)
    if "dtype" in metafunc.fixturenames:
        metafunc.parametrize("dtype", list(DTYPES.values()), ids=list(DTYPES))
