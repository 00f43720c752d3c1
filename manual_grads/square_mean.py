"""Gradient of ``out = mean(3 (x + 2)^2)`` (worked example B).

Forward, with shapes (x has n = N * M elements)::

    y   = x + 2           (N, M)
    z   = 3 * y * y       (N, M)
    out = mean(z)         ()

Backward, read from the bottom up:

1. ``out = (1/n) sum_i z[i]``, so ``d out / d z[i] = 1/n``: ``d_z = ones / n (N, M)``.
2. ``z = 3 y^2``, so ``d z / d y = 6 y`` (elementwise): ``d_y = d_z * 6 y (N, M)``.
3. ``y = x + 2``, so ``d y / d x = 1``: ``d_x = d_y (N, M)``.

Closed form: ``d out / d x = 6 (x + 2) / n``. For ``x = ones(2, 2)``: ``n = 4``,
``out = 3 * 3^2 = 27`` and every entry of the gradient is ``6 * 3 / 4 = 4.5``.
Each entry of ``x`` reaches ``out`` through its own ``z`` only, so the Jacobian is
diagonal and the backward never mixes entries.

Second order. ``d out / d x[i] = 6 (x[i] + 2) / n`` depends on ``x[i]`` alone, with slope
``6 / n``; so the Hessian is diagonal, ``6 / n`` times the identity on the ``n`` entries
(shaped ``(N, M, N, M)``, the shape of ``x`` twice).
"""

import torch

from manual_grads._check import check

SHAPES = {"x": "N M"}


def forward(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The forward pass; returns every named value, ``out`` last."""
    check(SHAPES, x=x)
    y = x + 2
    z = 3 * y * y
    return {"y": y, "z": z, "out": z.mean()}


def gradients(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """``d out / d x`` and every step before it, derived in the module docstring."""
    f = forward(x)
    d_z = torch.ones_like(f["z"]) / f["z"].numel()  # (N, M)  step 1: mean
    d_y = d_z * 6 * f["y"]  # (N, M)  step 2: 3 * y * y
    d_x = d_y  # (N, M)  step 3: x + 2
    return {"z": d_z, "y": d_y, "x": d_x}


def hessians(x: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
    """``d^2 out / d x^2 = (6 / n) I``, as ``{"x": {"x": (N, M, N, M)}}``."""
    check(SHAPES, x=x)
    n = x.numel()
    eye = torch.eye(n, dtype=x.dtype, device=x.device)
    return {"x": {"x": (6 / n * eye).reshape(*x.shape, *x.shape)}}
