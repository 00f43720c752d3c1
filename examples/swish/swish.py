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

SHAPES = {"x": "N D", "v": "N D"}


def _check(**tensors: torch.Tensor) -> None:
    """Refuse bad input by name: a wrong gradient is worse than an error."""
    shape = None
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise ValueError(f"{name}: dtype {t.dtype} is not floating point")
        if t.dim() != 2 or 0 in t.shape:
            raise ValueError(f"{name}: expected a non-empty (N, D) tensor, got {tuple(t.shape)}")
        if shape is not None and (t.shape, t.dtype, t.device) != shape[1:]:
            raise ValueError(f"{name}: shape, dtype and device must match {shape[0]}'s")
        shape = shape or (name, t.shape, t.dtype, t.device)


def forward(x: torch.Tensor) -> dict[str, torch.Tensor]:
    _check(x=x)
    s = torch.sigmoid(x)
    return {"s": s, "y": x * s}


def gradients(x: torch.Tensor, v: torch.Tensor) -> dict[str, torch.Tensor]:
    _check(x=x, v=v)
    f = forward(x)
    s = f["s"]
    d_y = v  # (N, D)  the grad_output
    d_s = d_y * x  # (N, D)  step 1: y = x * s, toward s
    d_x = d_y * s + d_s * s * (1 - s)  # (N, D)  steps 1 and 2: direct, and through s
    return {"y": d_y, "s": d_s, "x": d_x}
