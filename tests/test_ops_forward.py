"""The transformer ops' hand forwards against torch's own functions, by the verdict: a case
is judged against autograd of its own forward, so these pin that forward to the op it
stands for."""

import torch.nn.functional as F

from cases import CASES
from handgrad import compare

BY_NAME = {case.name: case for case in CASES}


def judge_forward(name: str, torch_op, device, dtype, inputs=None):
    """The case's output against ``torch_op(inputs)``, both in ``dtype``, by the verdict
    (the truth: ``torch_op`` in float64)."""
    case = BY_NAME[name]
    inputs = case.inputs(device, dtype) if inputs is None else inputs
    inputs = {k: t for k, t in inputs.items() if k != case.grad_output}
    compare(f"{name} forward [{device}, {dtype}]",
            lambda x: {case.output: case.forward(x)[case.output]},
            lambda x: {case.output: torch_op(x)}, inputs).check()


def test_layer_norm_is_torchs(device, dtype):
    judge_forward("layer_norm", lambda x: F.layer_norm(
        x["x"], x["x"].shape[-1:], x["gamma"], x["beta"]), device, dtype)

