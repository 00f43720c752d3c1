"""Causal attention with a FlashAttention-style backward (Dao 2023, Algorithm 2): the forward
keeps only the output and one log-sum-exp a row; the backward recomputes the softmax.

Forward, per batch and head (``scale = 1/sqrt(D)``)::

    s   = q k^T scale, future masked to -inf      (B, H, T, T)
    lse = logsumexp(s)                            (B, H, T)     kept in float32
    o   = exp(s - lse) v                          (B, H, T, D)  stored in the inputs' dtype

Backward for ``dout``: ``p = exp(s - lse)`` again from q, k and lse; ``dv = p^T dout``;
``dp = dout v^T``; the softmax's row sum taken from the stored output,
``delta = rowsum(dout o)`` (``= rowsum(p dp)``, since ``o = p v``); ``ds = p (dp - delta)``;
``dq = ds k scale``, ``dk = ds^T q scale``. As the kernels do, half-precision inputs are
read into float32, lse stays float32, and each result is rounded once to the inputs' dtype.
"""

import math

import torch
from wide import wide

from manual_grads._check import check

SHAPES = {"q": "B H T D", "k": "B H T D", "v": "B H T D", "dout": "B H T D"}


def _scores(q, k):
    t = q.shape[-2]
    future = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
    return ((q @ k.mT) * (1.0 / math.sqrt(q.shape[-1]))).masked_fill(future, float("-inf"))


def forward(q, k, v):
    check(SHAPES, q=q, k=k, v=v)
    qw, kw, vw = wide(q, k, v)
    s = _scores(qw, kw)
    lse = torch.logsumexp(s, -1)
    return {"lse": lse, "o": (torch.exp(s - lse[..., None]) @ vw).to(q.dtype)}


def gradients(q, k, v, dout):
    check(SHAPES, q=q, k=k, v=v, dout=dout)
    f = forward(q, k, v)
    qw, kw, vw, dw, o = wide(q, k, v, dout, f["o"])
    p = torch.exp(_scores(qw, kw) - f["lse"][..., None])  # recomputed
    scale = 1.0 / math.sqrt(q.shape[-1])
    dv = p.mT @ dw
    dp = dw @ vw.mT
    delta = (dw * o).sum(-1, keepdim=True)
    ds = p * (dp - delta)
    low = q.dtype
    return {"q": (ds @ kw * scale).to(low), "k": (ds.mT @ qw * scale).to(low),
            "v": dv.to(low)}
