"""Linear regression trained by hand-written SGD (worked example E).

The model is ``nn.Linear(1, 1)`` with ``nn.MSELoss``. Forward, with shapes (N samples)::

    y_pred   = x @ w^T + b           (N, 1)   x (N, 1), w (1, 1), b (1,)
    residual = y_pred - y            (N, 1)   y (N, 1)
    loss     = mean(residual ** 2)   ()

Backward, read from the bottom up:

1. ``loss = (1/N) sum_n residual[n]^2``, so ``d_residual = 2 residual / N (N, 1)``.
2. ``residual = y_pred - y``: ``d_y_pred = d_residual (N, 1)``.
3. ``y_pred[n] = x[n] w + b`` (one feature, one output):
   ``d_w = d_y_pred^T @ x (1, 1)`` (a sum over samples, shaped like ``w``) and
   ``d_b = d_y_pred.sum(0) (1,)``.

Closed forms, as the article writes them with ``x_n, y_n`` scalars:
``dL/dw = (2/N) (w sum x_n^2 - sum (y_n - b) x_n)`` and
``dL/db = (2/N) (N b - sum (y_n - w x_n))``; in matrix form ``(2/N) X^T (X w + b - Y)``.
With one sample and no bias (``N = 1, b = 0``) this is the article's first example,
``L = (w x - y)^2`` and ``dL/dw = 2 x (w x - y)``.

The update. Plain SGD moves each parameter against its gradient,
``p <- p - lr * d_p``; ``sgd_step`` does that, and equals ``torch.optim.SGD`` with no
momentum, dampening or weight decay.

Second order. Both gradients are linear in ``(w, b)``: differentiating
``dL/dw = (2/N) (w sum x_n^2 + b sum x_n - sum y_n x_n)`` and
``dL/db = (2/N) (w sum x_n + N b - sum y_n)`` once more gives the constant Hessian
``(2/N) [[sum x_n^2, sum x_n], [sum x_n, N]]``, whatever ``w``, ``b`` and ``y`` are.
``hessians`` returns its four blocks, each shaped like the two parameters it pairs.
"""

import torch

from manual_grads._check import check

SHAPES = {"w": "1 1", "b": "1", "x": "N 1", "y": "N 1"}

Tensors = dict[str, torch.Tensor]


def forward(w, b, x, y) -> Tensors:
    """The forward pass; returns every named value, ``loss`` last."""
    check(SHAPES, w=w, b=b, x=x, y=y)
    y_pred = x @ w.T + b
    residual = y_pred - y
    return {"y_pred": y_pred, "residual": residual, "loss": (residual**2).mean()}


def gradients(w, b, x, y) -> Tensors:
    """``dL/dw``, ``dL/db`` and every step before them, derived in the module docstring."""
    f = forward(w, b, x, y)
    d_residual = 2 * f["residual"] / x.shape[0]  # (N, 1)  step 1: mean of squares
    d_y_pred = d_residual  # (N, 1)  step 2: y_pred - y
    d_w = d_y_pred.T @ x  # (1, 1)  step 3: x @ w^T
    d_b = d_y_pred.sum(0)  # (1,)    step 3: + b, added to every row
    return {"residual": d_residual, "y_pred": d_y_pred, "w": d_w, "b": d_b}


def hessians(w, b, x, y) -> dict[str, dict[str, torch.Tensor]]:
    """The constant Hessian ``(2/N) [[sum x^2, sum x], [sum x, N]]``, block by block."""
    check(SHAPES, w=w, b=b, x=x, y=y)
    n = x.shape[0]
    d_ww = 2 / n * (x * x).sum()  # d/dw of dL/dw
    d_wb = 2 / n * x.sum()  # d/db of dL/dw = d/dw of dL/db
    d_bb = 2 / n * n * torch.ones_like(d_wb)  # d/db of dL/db
    return {
        "w": {"w": d_ww.reshape(1, 1, 1, 1), "b": d_wb.reshape(1, 1, 1)},
        "b": {"w": d_wb.reshape(1, 1, 1), "b": d_bb.reshape(1, 1)},
    }


def sgd_step(params: Tensors, grads: Tensors, lr: float) -> Tensors:
    """One plain SGD step, ``p - lr * d_p`` for each parameter; returns new tensors."""
    if params.keys() != grads.keys():
        raise ValueError(f"grads: keys {sorted(grads)} differ from params' {sorted(params)}")
    if not lr > 0:
        raise ValueError(f"lr: expected a positive learning rate, got {lr}")
    for name, p in params.items():
        g = grads[name]
        if not isinstance(g, torch.Tensor) or (g.shape, g.dtype) != (p.shape, p.dtype):
            got = (tuple(g.shape), g.dtype) if isinstance(g, torch.Tensor) else type(g).__name__
            raise ValueError(f"grads[{name!r}]: expected {(tuple(p.shape), p.dtype)} like "
                             f"params[{name!r}], got {got}")
    return {name: p - lr * grads[name] for name, p in params.items()}
