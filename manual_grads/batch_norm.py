"""Batch normalisation in training mode, backward by hand: layer norm over the other axis.

Forward, with shapes (N samples of C features; ``eps = 1e-5`` as ``F.batch_norm``)::

    mean = (1/N) sum_n x               (1, C)   x (N, C)
    xc   = x - mean                    (N, C)
    var  = (1/N) sum_n xc^2            (1, C)   biased: divided by N
    std  = sqrt(var + eps)             (1, C)
    xhat = xc / std                    (N, C)   every feature now has mean 0 over the batch
    y    = xhat * gamma + beta         (N, C)   gamma (C,), beta (C,)

This is ``F.batch_norm(x, ..., training=True)``: each feature is normalised by the mean and
biased variance of the batch. It is ``layer_norm`` with the sums over the batch axis ``N``
instead of the features ``C``, so the backward is the same six steps with ``N`` for ``C``
(see ``layer_norm``), and the same code, ``normalize_backward(..., dim=0)``:

1. ``d_xhat = v * gamma``; ``d_gamma = sum_n v * xhat``, ``d_beta = sum_n v`` (C,).
2. ``d_std = -sum_n d_xhat * xhat / std (1, C)``.
3. ``d_var = d_std / (2 std) (1, C)``.
4. ``d_xc = d_xhat / std + 2 xc d_var / N (N, C)``.
5. ``d_mean = -sum_n d_xc (1, C)``.
6. ``d_x = d_xc + d_mean / N (N, C)``.

Fused closed form (``gradients_fused``), with ``<a>`` a mean over the batch::

    d_x = (d_xhat - <d_xhat> - xhat <d_xhat * xhat>) / std

Every sample's gradient depends on the whole batch, through ``<d_xhat>`` and
``<d_xhat * xhat>``: the reason batch norm couples the samples of a batch, where layer
norm keeps them apart.

Where the unbiased variance enters. ``F.batch_norm`` in training also updates the running
statistics that evaluation mode uses later::

    running_mean <- (1 - m) running_mean + m mean
    running_var  <- (1 - m) running_var  + m var * N / (N - 1)     (m = 0.1)

with the *unbiased* variance, ``sum_n xc^2 / (N - 1)``, as an estimate of the population's.
These buffers are written, not read: nothing in ``y`` depends on them in training, so they
pass back no gradient (``running_statistics`` computes them, outside the gradient). The
normalisation itself uses the biased ``var``. A derivation that mixes the two, normalising
by the biased variance but differentiating ``var`` as ``sum xc^2 / (N - 1)`` (step 4 with
``2 xc d_var / (N - 1)``), or normalising by the unbiased one as ``torch.var`` does by
default, differentiates another function than the one that ran: ``d_x`` is no longer
orthogonal to ``xhat``, and the error, of order ``1 / N``, hides in a large batch but
not in a small one. At ``N = 1`` the unbiased variance is ``0 / 0``; the biased one is 0,
``y = beta``, and ``d_x = 0``.
"""

import torch

from manual_grads._check import check
from manual_grads.layer_norm import normalize, normalize_backward, normalize_backward_fused

SHAPES = {"x": "N C", "gamma": "C", "beta": "C", "v": "N C"}
MOMENTUM = 0.1  # F.batch_norm's default

Tensors = dict[str, torch.Tensor]


def forward(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> Tensors:
    """The forward pass in training mode; returns every named value, ``y`` last."""
    check(SHAPES, x=x, gamma=gamma, beta=beta)
    return normalize(x, gamma, beta, dim=0)


def backward(f: Tensors, gamma: torch.Tensor, d_y: torch.Tensor) -> Tensors:
    """The gradients given ``d_y``, the upstream gradient of ``y``, and ``f = forward(...)``:
    ``d_<name>`` for every step and input, keyed by name, in backward order. Unchecked."""
    return normalize_backward(f, gamma, d_y, dim=0)


def gradients(x, gamma, beta, v) -> Tensors:
    """``J^T v`` for ``x``, ``gamma``, ``beta`` and every step, step by step."""
    check(SHAPES, x=x, gamma=gamma, beta=beta, v=v)
    return backward(forward(x, gamma, beta), gamma, v)


def gradients_fused(x, gamma, beta, v) -> Tensors:
    """The same ``J^T v`` by the fused closed form."""
    check(SHAPES, x=x, gamma=gamma, beta=beta, v=v)
    return normalize_backward_fused(forward(x, gamma, beta), gamma, v, dim=0)


RUNNING_SHAPES = {"x": "N C", "running_mean": "C", "running_var": "C"}  # parsed once


def running_statistics(x, running_mean, running_var, momentum: float = MOMENTUM):
    """The buffers after one training step: the batch mean, and the *unbiased* variance
    (``N - 1``), blended in with ``momentum``. No gradient flows through them."""
    check(RUNNING_SHAPES, x=x, running_mean=running_mean, running_var=running_var)
    n = x.shape[0]
    mean = x.mean(0)
    unbiased = ((x - mean) ** 2).sum(0) / (n - 1)  # (C,)  sum xc^2 / (N - 1)
    return ((1 - momentum) * running_mean + momentum * mean,
            (1 - momentum) * running_var + momentum * unbiased)

