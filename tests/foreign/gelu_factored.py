"""GELU, tanh approximation, its derivative with ``0.5 (1 + t)`` factored out.

Forward, elementwise, ``s = sqrt(2/pi)``, ``k = 0.044715``::

    t = tanh(s x (1 + k x^2))
    y = 0.5 x (1 + t)

Backward: ``dy/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) s (1 + 3 k x^2)``, and with
``1 - t^2 = (1 - t)(1 + t)``::

    dy/dx = 0.5 (1 + t) (1 + x (1 - t) s (1 + 3 k x^2))

``1 - t`` keeps its digits as ``t`` nears 1, where ``1 - t^2`` loses them. Half-precision
inputs are computed in float32 and rounded once, as torch's own elementwise kernels do
(in float16, ``x^2`` overflows past 256 and ``(1 - t) * inf`` would be NaN).
"""

import math

import torch
from wide import wide

from manual_grads._check import check

SHAPES = {"x": "N D", "dy": "N D"}
S, K = math.sqrt(2.0 / math.pi), 0.044715


def forward(x):
    check(SHAPES, x=x)
    (w,) = wide(x)
    t = torch.tanh(S * w * (1 + K * w * w))
    return {"y": (0.5 * w * (1 + t)).to(x.dtype)}


def gradients(x, dy):
    check(SHAPES, x=x, dy=dy)
    w, d = wide(x, dy)
    t = torch.tanh(S * w * (1 + K * w * w))
    inner = S * (1 + 3 * K * w * w)
    return {"x": (d * (0.5 * (1 + t)) * (1 + w * (1 - t) * inner)).to(x.dtype)}
