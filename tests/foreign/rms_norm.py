"""RMSNorm (Zhang and Sennrich 2019; LLaMA's ``RMSNorm``): no mean, no bias.

Forward, over the last axis::

    rstd = 1 / sqrt(<x^2> + eps)        (N, 1)
    y    = x rstd weight                (N, C)

Backward for ``dy``, with ``g = dy weight``: ``x`` reaches ``y`` directly and through
``rstd``, ``d rstd / d x = -rstd^3 x / C``. Two arrangements of the same derivative:

- ``gradients`` (the normalised form, as most fused kernels write it): with
  ``xhat = x rstd``, ``dx = rstd (g - xhat <g xhat>)``;
- ``gradients_cubed`` (the chain rule as read off the forward):
  ``dx = g rstd - x rstd^3 <g x>``.

``dweight = sum_n dy xhat``.
"""

import torch

from manual_grads._check import check

SHAPES = {"x": "N C", "weight": "C", "dy": "N C"}
EPS = 1e-6


def forward(x, weight):
    check(SHAPES, x=x, weight=weight)
    rstd = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS)
    xhat = x * rstd
    return {"rstd": rstd, "xhat": xhat, "y": xhat * weight}


def gradients(x, weight, dy):
    check(SHAPES, x=x, weight=weight, dy=dy)
    f = forward(x, weight)
    rstd, xhat = f["rstd"], f["xhat"]
    g = dy * weight
    dx = rstd * (g - xhat * (g * xhat).mean(-1, keepdim=True))
    return {"x": dx, "weight": (dy * xhat).sum(0)}


def gradients_cubed(x, weight, dy):
    check(SHAPES, x=x, weight=weight, dy=dy)
    rstd = forward(x, weight)["rstd"]
    g = dy * weight
    dx = g * rstd - x * rstd**3 * (g * x).mean(-1, keepdim=True)
    return {"x": dx, "weight": (dy * x * rstd).sum(0)}
