"""GELU, the exact form with erf, backward by hand (``gelu`` is the tanh approximation).

Forward, elementwise, with shapes (any; the case draws ``N x D``)::

    z   = x / sqrt(2)                 (N, D)
    cdf = 0.5 (1 + erf(z))            (N, D)   Phi(x), the standard normal CDF
    y   = x * cdf                     (N, D)

``y`` is ``F.gelu(x)``: ``x`` weighted by the probability that a standard normal variable
is below it. Its gradient arrives as ``v``, shaped like ``y``.

Backward, read from the bottom up:

1. ``y = x * cdf``: ``d_cdf = d_y * x (N, D)``, and ``x`` gets ``d_y * cdf``.
2. ``cdf = 0.5 (1 + erf(z))``: ``erf'(z) = 2 / sqrt(pi) exp(-z^2)``, so
   ``d_z = d_cdf exp(-z^2) / sqrt(pi) (N, D)``.
3. ``z = x / sqrt(2)``: ``x`` gets ``d_z / sqrt(2)``, so
   ``d_x = d_y * cdf + d_z / sqrt(2) (N, D)``.

Closed form: with ``phi(x) = exp(-x^2 / 2) / sqrt(2 pi)`` the normal density, steps 2 and 3
give ``x`` the amount ``d_cdf phi(x)``, and::

    gelu'(x) = Phi(x) + x phi(x),   d_x = v gelu'(x)

``Phi(x)`` is the gate; ``x phi(x)`` is how the gate moves, negative for ``x < 0``, so the
slope dips to -0.129 near ``x = -1.41``. The tanh form's derivative (``gelu``) follows this
one to within 9e-4.

Numerics. The density is taken from the forward's ``z``, as ``exp(-z^2)``, not recomputed
as ``exp(-x^2 / 2)``: exp turns the rounding of its argument into a relative error, and
the same ``z`` keeps that error the one autograd's erf backward has. For ``|z|`` past 256
in float16 ``z^2`` overflows, ``exp(-inf) = 0``, and ``d_x`` is the gate's exact 0 or
``v``, as in autograd.
"""

import math

import torch

from manual_grads._check import check

SHAPES = {"x": "N D", "v": "N D"}
SQRT1_2 = math.sqrt(0.5)

Tensors = dict[str, torch.Tensor]


def forward(x: torch.Tensor) -> Tensors:
    """The forward pass; returns every named value, ``y`` last."""
    check(SHAPES, x=x)
    z = x * SQRT1_2
    cdf = 0.5 * (1 + torch.erf(z))
    return {"z": z, "cdf": cdf, "y": x * cdf}


def backward(f: Tensors, x: torch.Tensor, d_y: torch.Tensor) -> Tensors:
    """The gradients given ``d_y``, the upstream gradient of ``y``, and ``f = forward(x)``
    (``forward`` checks an ``(N, D)`` input, so a block's ``(B, T, D)`` goes in as
    ``(B T, D)``; this takes any shape). Returns ``d_cdf``, ``d_z`` and ``d_x``, keyed by name, in
    backward order."""
    z = f["z"]
    d_cdf = d_y * x  # (N, D)  step 1: y = x * cdf
    d_z = d_cdf * (torch.exp(-z * z) / math.sqrt(math.pi))  # (N, D)  step 2: 0.5 erf'(z)
    d_x = d_y * f["cdf"] + d_z * SQRT1_2  # (N, D)  steps 1 and 3: both uses of x
    return {"cdf": d_cdf, "z": d_z, "x": d_x}


def gradients(x: torch.Tensor, v: torch.Tensor) -> Tensors:
    """``J^T v`` for ``x`` and every step, derived in the module docstring."""
    check(SHAPES, x=x, v=v)
    return backward(forward(x), x, v)
