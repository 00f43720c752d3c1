"""GELU, tanh approximation, as llm.c writes its backward (``train_gpt2.c``
``gelu_backward``): ``sech^2`` from ``cosh``, not ``1 - tanh^2``.

Forward, elementwise, ``s = sqrt(2/pi)``::

    u   = s (x + 0.044715 x^3)
    out = 0.5 x (1 + tanh(u))

Backward: ``d tanh(u) / du = sech^2(u) = 1 / cosh(u)^2`` and ``du/dx = s (1 + 3 * 0.044715
x^2)``, so ``dinp = dout (0.5 (1 + tanh(u)) + 0.5 x sech^2(u) du/dx)``. Where ``cosh``
overflows, ``sech^2 = 1/inf = 0``: the exact limit.

As llm.c's CUDA kernels (``train_gpt2.cu``) do for bfloat16, every element is read into
float32, computed there, and the result rounded once to the inputs' dtype.
"""

import math

import torch
from wide import wide

from manual_grads._check import check

SHAPES = {"inp": "N D", "dout": "N D"}
GELU_SCALING_FACTOR = math.sqrt(2.0 / math.pi)


def forward(inp):
    check(SHAPES, inp=inp)
    (x,) = wide(inp)
    cube = 0.044715 * x * x * x
    out = 0.5 * x * (1.0 + torch.tanh(GELU_SCALING_FACTOR * (x + cube)))
    return {"out": out.to(inp.dtype)}


def gradients(inp, dout):
    check(SHAPES, inp=inp, dout=dout)
    x, d = wide(inp, dout)
    cube = 0.044715 * x * x * x
    tanh_arg = GELU_SCALING_FACTOR * (x + cube)
    tanh_out = torch.tanh(tanh_arg)
    coshf_out = torch.cosh(tanh_arg)
    sech_out = 1.0 / (coshf_out * coshf_out)
    local_grad = 0.5 * (1.0 + tanh_out) + x * 0.5 * sech_out * GELU_SCALING_FACTOR * (
        1.0 + 3.0 * 0.044715 * x * x)
    return {"inp": (local_grad * d).to(inp.dtype)}
