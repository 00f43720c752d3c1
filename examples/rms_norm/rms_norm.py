"""RMSNorm, ``y = x / sqrt(mean(x^2) + eps) * weight``, fused into one
``torch.autograd.Function`` with its backward derived by hand, and the same math in plain
PyTorch ops (``rms_norm_reference``) for handgrad to hold it to.

This folder is a project of its own: ``conftest.py`` declares the pair as a
``handgrad.FunctionCase`` and ``pytest`` here runs every one of handgrad's checks on it.

Forward, per row of ``x`` (N, D), with ``weight`` (D,)::

    rstd = 1 / sqrt(mean(x^2) + eps)    (N, 1)
    x_hat = x * rstd                    (N, D)
    y = x_hat * weight                  (N, D)

Backward, bottom-up, for the upstream gradient ``g = dL/dy``:

1. ``y = x_hat * weight``: ``d_weight = sum over rows of g * x_hat``, ``d_x_hat = g * weight``.
2. ``x_hat = x * rstd``, ``d rstd / d x_j = -rstd^3 x_j / D``: ``d_x = rstd * (d_x_hat -
   x_hat * mean(d_x_hat * x_hat))``, the mean per row.

Step 2 runs in float32 at least, as a fused kernel accumulates: in float16 the products
``d_x_hat * x_hat`` overflow on a row near zero (``rstd`` 1e3, ``g * weight`` 2e4) where
``d_x`` itself does not, and autograd's order stays finite there.

The backward recomputes ``rstd`` from the saved ``x`` rather than saving the forward's: the
forward runs without autograd, so a saved ``rstd`` would carry no graph, and autograd
through this backward (the double backward) would miss its dependence on ``x``.
"""

import torch

EPS = 1e-6


def rms_norm_reference(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The same math in plain PyTorch ops: what autograd differentiates."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * weight


class RMSNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or weight.shape != x.shape[1:]:
            raise ValueError(f"x, weight: expected (N, D) and (D,), got {tuple(x.shape)} and "
                             f"{tuple(weight.shape)}")
        ctx.save_for_backward(x, weight)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * weight

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        x, weight = ctx.saved_tensors
        g = grad_output  # (N, D), read through its strides, whatever its layout
        rstd = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS)  # (N, 1)
        x_hat = x * rstd  # (N, D)
        d_weight = (g * x_hat).sum(0)  # (D,)  step 1
        d_x_hat = g * weight  # (N, D)  step 1
        wide = torch.promote_types(x.dtype, torch.float32)  # step 2: float32 at least
        rstd_, x_hat_, d_x_hat_ = (t.to(wide) for t in (rstd, x_hat, d_x_hat))
        mean = (d_x_hat_ * x_hat_).mean(-1, keepdim=True)  # (N, 1)
        d_x = (rstd_ * (d_x_hat_ - x_hat_ * mean)).to(x.dtype)  # (N, D)  step 2
        return d_x, d_weight
