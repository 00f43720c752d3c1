"""Backward of a vector output: ``y = 2 x``, given a ``grad_output`` ``v`` (worked example C).

Forward::

    y = 2 * x        (N,)    x (N,)

``y`` is a vector, so "the gradient of y" is not one number per entry of ``x``: it is the
whole Jacobian ``J[i, j] = d y[i] / d x[j]``, here ``2 I`` of shape ``(N, N)``. Autograd
never builds ``J``. Calling backward on ``y`` with ``v`` asks for the vector-Jacobian
product ``J^T v``: the gradient of the scalar ``sum_i v[i] y[i]`` with respect to ``x``.
So ``v`` (the ``grad_output``) is "how much each output matters downstream": in a network
it is the gradient arriving from the layers above, and ``v = ones`` gives the gradient of
``y.sum()``. It has the shape of ``y``.

Backward:

1. ``s = sum_i v[i] y[i]``, so ``d s / d y = v``: ``d_y = v (N,)``.
2. ``y = 2 x``, so ``J = 2 I`` and ``d_x = J^T d_y = 2 d_y (N,)``.

Closed form: the gradient that lands on ``x`` is ``2 v``. With ``v = [0.1, 1.0, 0.0001]`` that is
``[0.2, 2.0, 0.0002]``, whatever ``x`` is, since ``J`` does not depend on ``x``.
"""

import torch

from manual_grads._check import check

SHAPES = {"x": "N", "v": "N"}


def forward(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The forward pass; returns the vector ``y``."""
    check(SHAPES, x=x)
    return {"y": 2 * x}


def gradients(x: torch.Tensor, v: torch.Tensor) -> dict[str, torch.Tensor]:
    """``J^T v`` for ``y = 2 x``, derived in the module docstring."""
    check(SHAPES, x=x, v=v)
    d_y = v  # (N,)  step 1: the grad_output is d s / d y
    d_x = 2 * d_y  # (N,)  step 2: J^T d_y with J = 2 I
    return {"x": d_x}
