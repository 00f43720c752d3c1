"""GELU with erf, its backward with the normal density from ``exp(-x^2 / 2)`` (as
PyTorch's own CPU kernel writes ``GeluBackward``: ``kAlpha = 2/sqrt(pi) * 1/sqrt(2) / 2``).

Forward, elementwise::

    cdf = 0.5 (1 + erf(x / sqrt(2)))
    y   = x cdf

Backward: ``dy/dx = cdf + x pdf``, ``pdf = exp(-x^2 / 2) / sqrt(2 pi)``, the density
recomputed from ``x`` rather than from the forward's ``x / sqrt(2)``.
"""

import math

import torch

from manual_grads._check import check

SHAPES = {"x": "N D", "dy": "N D"}
K_ALPHA = 2 / math.sqrt(math.pi) * math.sqrt(0.5) * 0.5  # 1 / sqrt(2 pi)


def forward(x):
    check(SHAPES, x=x)
    cdf = 0.5 * (1 + torch.erf(x * math.sqrt(0.5)))
    return {"cdf": cdf, "y": x * cdf}


def gradients(x, dy):
    check(SHAPES, x=x, dy=dy)
    cdf = forward(x)["cdf"]
    pdf = torch.exp(-0.5 * x * x) * K_ALPHA
    return {"x": dy * (cdf + x * pdf)}
