"""Causal self-attention as llm.c writes it (``train_gpt2.c`` ``attention_forward`` /
``attention_backward``): q, k, v packed in one input, the softmax's backward as its full
Jacobian, summed explicitly.

Forward, per batch b and head h (``scale = 1/sqrt(HS)``)::

    q, k, v  = inp[:, :, 0], inp[:, :, 1], inp[:, :, 2]         (B, T, NH, HS) each
    preatt   = q k^T scale, t2 > t masked out                   (B, NH, T, T)
    att      = exp(preatt - max) / sum exp(preatt - max)        (B, NH, T, T)   causal rows
    out      = att v                                            (B, T, NH, HS)

Backward, in llm.c's order: ``datt = dout v^T``, ``dv = att^T dout``; the softmax's
Jacobian ``d att[t2] / d preatt[t3] = att[t2] (1[t2 = t3] - att[t3])`` contracted with
``datt`` over t2 (llm.c's double loop over t2, t3 <= t; the rest is never touched);
``dq = dpreatt k scale``, ``dk = dpreatt^T q scale``. The Jacobian is (T, T) a row:
``most`` keeps T small. As llm.c's CUDA kernels do for bfloat16, everything is computed in
float32 and each result rounded once to the inputs' dtype.
"""

import math

import torch
from wide import wide

from manual_grads._check import check

SHAPES = {"inp": "B T 3 NH HS", "dout": "B T NH HS"}


def _heads(t):
    return t.transpose(1, 2)  # (B, T, NH, HS) -> (B, NH, T, HS)


def _future(t: int, device) -> torch.Tensor:
    return torch.ones(t, t, dtype=torch.bool, device=device).triu(1)


def _attention(inp):
    q, k, v = (_heads(t) for t in inp.unbind(2))
    preatt = (q @ k.mT) * (1.0 / math.sqrt(inp.shape[-1]))
    masked = preatt.masked_fill(_future(inp.shape[1], inp.device), float("-inf"))
    e = torch.exp(masked - masked.amax(-1, keepdim=True))
    att = e * (1.0 / e.sum(-1, keepdim=True))
    return q, k, v, preatt, att


def forward(inp):
    check(SHAPES, inp=inp)
    _, _, v, _, att = _attention(*wide(inp))
    return {"out": _heads(att @ v).to(inp.dtype)}  # what it names is float32: kept inside


def gradients(inp, dout):
    check(SHAPES, inp=inp, dout=dout)
    x, d = wide(inp, dout)
    q, k, v, _, att = _attention(x)
    scale, d = 1.0 / math.sqrt(inp.shape[-1]), _heads(d)
    datt = d @ v.mT  # (B, NH, T, T)
    dv = att.mT @ d
    eye = torch.eye(att.shape[-1], dtype=att.dtype, device=att.device)
    local = att[..., :, None] * (eye - att[..., None, :])  # [t, t2, t3]
    dpreatt = (local * datt[..., :, None]).sum(-2)  # sum over t2
    dpreatt = dpreatt.masked_fill(_future(inp.shape[1], inp.device), 0)  # t3 > t: untouched
    dq = dpreatt @ k * scale
    dk = dpreatt.mT @ q * scale
    dinp = torch.stack([_heads(dq), _heads(dk), _heads(dv)], dim=2)
    return {"inp": dinp.to(inp.dtype)}
