"""Layer norm as llm.c writes it (``train_gpt2.c``: ``layernorm_forward``/``_backward``).

Forward over the channels of each (b, t) position; ``mean`` and ``rstd`` are cached for the
backward, ``norm`` is recomputed there from them::

    mean = (1/C) sum_c inp               (B, T, 1)
    var  = (1/C) sum_c (inp - mean)^2    (B, T, 1)   biased
    rstd = 1 / sqrt(var + 1e-5)          (B, T, 1)   a reciprocal, not a divisor
    norm = (inp - mean) rstd             (B, T, C)
    out  = norm weight + bias            (B, T, C)

Backward, for ``dout``: ``dnorm = weight dout``; two means along the channels,
``dnorm_mean = <dnorm>`` and ``dnorm_norm_mean = <dnorm norm>``; then
``dinp = (dnorm - dnorm_mean - norm dnorm_norm_mean) rstd``. ``dweight = sum dout norm``,
``dbias = sum dout`` over (b, t). The three terms of ``dinp`` are the direct path and the
paths through ``mean`` and through ``var``: ``d rstd / d var = -rstd^3 / 2`` and
``d var / d inp = 2 (inp - mean) / C`` give ``-norm <dnorm norm> rstd``.
"""

import torch

from manual_grads._check import check

SHAPES = {"inp": "B T C", "weight": "C", "bias": "C", "dout": "B T C"}
EPS = 1e-5


def forward(inp, weight, bias):
    check(SHAPES, inp=inp, weight=weight, bias=bias)
    mean = inp.mean(-1, keepdim=True)
    xshift = inp - mean
    var = (xshift * xshift).mean(-1, keepdim=True)
    rstd = 1.0 / torch.sqrt(var + EPS)
    norm = xshift * rstd
    out = norm * weight + bias
    return {"mean": mean, "rstd": rstd, "norm": norm, "out": out}


def gradients(inp, weight, bias, dout):
    check(SHAPES, inp=inp, weight=weight, bias=bias, dout=dout)
    cache = forward(inp, weight, bias)
    mean, rstd = cache["mean"], cache["rstd"]
    norm = (inp - mean) * rstd  # recomputed from the cache, as llm.c does
    dnorm = weight * dout
    dnorm_mean = dnorm.mean(-1, keepdim=True)
    dnorm_norm_mean = (dnorm * norm).mean(-1, keepdim=True)
    dinp = (dnorm - dnorm_mean - norm * dnorm_norm_mean) * rstd
    return {"inp": dinp, "weight": (dout * norm).sum((0, 1)), "bias": dout.sum((0, 1))}
