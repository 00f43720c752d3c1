"""Gradient of a summed squared error through ``y_hat = X w`` (worked example A).

Forward, with shapes (N rows of data, D features)::

    y_hat     = X @ w                 (N, 1)   X (N, D), w (D, 1)
    residual  = y_hat - y             (N, 1)   y (N, 1)
    loss_rows = residual ** 2 / 2     (N, 1)
    loss      = sum(loss_rows)        ()

Backward, one chain-rule step per forward line, read from the bottom up:

1. ``loss = sum_n loss_rows[n]``, so ``d loss / d loss_rows[n] = 1``:
   ``d_loss_rows = ones (N, 1)``.
2. ``loss_rows = residual ** 2 / 2``, so ``d loss_rows / d residual = residual``:
   ``d_residual = d_loss_rows * residual (N, 1)``.
3. ``residual = y_hat - y``, so ``d residual / d y_hat = 1``: ``d_y_hat = d_residual``.
4. ``y_hat[n] = sum_d X[n, d] w[d]``, so ``d y_hat[n] / d w[d] = X[n, d]`` and
   ``d_w[d] = sum_n X[n, d] d_y_hat[n]``, that is ``d_w = X^T @ d_y_hat (D, 1)``.

Closed form: ``d loss / d w = X^T (X w - y)``.

Why a column and not a row? ``d_w[d]`` is the rate of change of the scalar loss when the
single number ``w[d]`` moves, so there is one entry per entry of ``w``, laid out like ``w``:
shape ``(D, 1)``. Writing the chain rule with Jacobians instead gives
``(y_hat - y)^T X``, of shape ``(1, D)``: the same D numbers, transposed, because a
Jacobian of a scalar is a row by convention. PyTorch stores the gradient of a parameter
in the parameter's own shape, so for ``w`` it prints the column ``X^T (y_hat - y)``.

Second order. The gradient ``X^T (X w - y)`` is linear in ``w``, so differentiating it
once more leaves the constant ``d^2 loss / d w[d] d w[e] = sum_n X[n, d] X[n, e]``, that
is ``X^T X (D, D)``: symmetric, positive semi-definite, the same for every ``w``.
``hessians`` returns it shaped ``(D, 1, D, 1)``, the shape of ``w`` twice, as
the Hessian of torch's func module does.
"""

import torch

from manual_grads._check import check

SHAPES = {"X": "N D", "w": "D 1", "y": "N 1"}


def forward(X: torch.Tensor, w: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """The forward pass; returns every named value, the summed ``loss`` last."""
    check(SHAPES, X=X, w=w, y=y)
    y_hat = X @ w
    residual = y_hat - y
    loss_rows = residual**2 / 2
    return {"y_hat": y_hat, "residual": residual, "loss_rows": loss_rows,
            "loss": loss_rows.sum()}


def gradients(X: torch.Tensor, w: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """``d loss / d w`` and every step before it, derived in the module docstring."""
    f = forward(X, w, y)
    d_loss_rows = torch.ones_like(f["loss_rows"])  # (N, 1)  step 1: sum
    d_residual = d_loss_rows * f["residual"]  # (N, 1)  step 2: r**2 / 2
    d_y_hat = d_residual  # (N, 1)  step 3: y_hat - y
    d_w = X.T @ d_y_hat  # (D, 1)  step 4: X @ w
    return {"loss_rows": d_loss_rows, "residual": d_residual, "y_hat": d_y_hat, "w": d_w}


def hessians(X, w, y) -> dict[str, dict[str, torch.Tensor]]:
    """``d^2 loss / d w^2 = X^T X``, as ``{"w": {"w": (D, 1, D, 1)}}``."""
    check(SHAPES, X=X, w=w, y=y)
    return {"w": {"w": (X.T @ X).reshape(*w.shape, *w.shape)}}
