"""Layer norm as a half-precision kernel computes it (Apex's and torch's fused layer norm):
every input read into float32, the forward and the backward taken there, each result
rounded once to the inputs' dtype on the way out.

Forward (``w`` float32 throughout, ``eps = 1e-5``)::

    mu = <x>,  rstd = 1 / sqrt(<(x - mu)^2> + eps)               (N, 1)
    y  = ((x - mu) rstd * gamma + beta).to(x.dtype)                        (N, C)

Backward, in the kernels' arrangement: two row sums, ``a = sum_c g`` and
``b = sum_c g xhat`` with ``g = dy gamma``, then one line per entry::

    dx = rstd / C (C g - a - xhat b)

the closed form ``(g - <g> - xhat <g xhat>) rstd`` with the means' ``1/C`` taken out to the
front. ``dgamma = sum_n dy xhat``, ``dbeta = sum_n dy``, float32 sums rounded once.
"""

import torch
from wide import wide

from manual_grads._check import check

SHAPES = {"x": "N C", "gamma": "C", "beta": "C", "dy": "N C"}
EPS = 1e-5


def _stats(x):
    mu = x.mean(-1, keepdim=True)
    rstd = torch.rsqrt((x - mu).square().mean(-1, keepdim=True) + EPS)
    return mu, rstd


def forward(x, gamma, beta):
    check(SHAPES, x=x, gamma=gamma, beta=beta)
    xw, gw, bw = wide(x, gamma, beta)
    mu, rstd = _stats(xw)
    y = ((xw - mu) * rstd * gw + bw).to(x.dtype)
    return {"y": y}


def gradients(x, gamma, beta, dy):
    check(SHAPES, x=x, gamma=gamma, beta=beta, dy=dy)
    xw, gw, dyw = wide(x, gamma, dy)
    mu, rstd = _stats(xw)
    xhat = (xw - mu) * rstd
    g = dyw * gw
    a = g.sum(-1, keepdim=True)
    b = (g * xhat).sum(-1, keepdim=True)
    c = x.shape[-1]
    dx = rstd / c * (c * g - a - xhat * b)
    return {"x": dx.to(x.dtype), "gamma": (dyw * xhat).sum(0).to(x.dtype),
            "beta": dyw.sum(0).to(x.dtype)}
