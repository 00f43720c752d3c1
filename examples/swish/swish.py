"""Swish (SiLU), ``y = x * sigmoid(x)``, with its gradient derived by hand.

This folder is a project of its own that uses handgrad to check a gradient: this module
holds the algebra, ``conftest.py`` declares it as a case, and ``pytest`` here runs every
one of handgrad's checks on it.

Forward, elementwise, with a grad_output ``v`` of y's shape (``y.backward(v)``)::

    s = sigmoid(x)      (N, D)
    y = x * s           (N, D)

Backward, bottom-up, for the upstream gradient ``d_y = v``:

1. ``y = x * s``: the product rule sends ``d_y * s`` to ``x`` directly and
   ``d_s = d_y * x`` to ``s``.
2. ``s = sigmoid(x)``: ``ds/dx = s (1 - s)``, so ``x`` gets ``d_s * s * (1 - s)`` more.

Closed form: ``d_x = v * (s + x s (1 - s))``.
"""

import torch

from handgrad import check

SHAPES = {"x": "N D", "v": "N D"}


def forward(x: torch.Tensor) -> dict[str, torch.Tensor]:
    check(SHAPES, x=x)  # bad input: a ValueError naming the argument
    s = torch.sigmoid(x)
    return {"s": s, "y": x * s}


def gradients(x: torch.Tensor, v: torch.Tensor) -> dict[str, torch.Tensor]:
    check(SHAPES, x=x, v=v)
    f = forward(x)
    s = f["s"]
    d_y = v  # (N, D)  the grad_output
    d_s = d_y * x  # (N, D)  step 1: y = x * s, toward s
    d_x = d_y * s + d_s * s * (1 - s)  # (N, D)  steps 1 and 2: direct, and through s
    return {"y": d_y, "s": d_s, "x": d_x}  # keyed by the bare name: d_x under "x"
