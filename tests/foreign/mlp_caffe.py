"""A two-layer ReLU MLP as BLAS-based frameworks write it (Caffe's ``InnerProductLayer``):
``addmm`` for each layer, and each bias's gradient as a matrix-vector product with a
vector of ones (Caffe's ``bias_multiplier_``), not a reduction; the ReLU's backward as
cs231n writes it, ``dhidden[hidden <= 0] = 0``.

Forward::

    h   = b1 + x w1        (N, H)   x (N, D), w1 (D, H)
    a   = relu(h)          (N, H)
    out = b2 + a w2        (N, O)   w2 (H, O)

Backward for ``dout``: ``dw2 = a^T dout``, ``db2 = dout^T 1``; ``da = dout w2^T``,
``dh = da`` zeroed where ``h <= 0``; ``dw1 = x^T dh``, ``db1 = dh^T 1``; ``dx = dh w1^T``.

``gradients_folded`` takes ``dx`` in the other association: the mask is a diagonal per
row, ``dx[n] = dout[n] (w1 diag(m[n]) w2)^T``, so ``w1`` (masked) and ``w2`` are folded
into one (D, O) matrix per row first, and ``dout`` applied last.
"""

import torch

from manual_grads._check import check

SHAPES = {"x": "N D", "w1": "D H", "b1": "H", "w2": "H O", "b2": "O", "dout": "N O"}


def forward(x, w1, b1, w2, b2):
    check(SHAPES, x=x, w1=w1, b1=b1, w2=w2, b2=b2)
    h = torch.addmm(b1, x, w1)
    a = torch.relu(h)
    return {"h": h, "a": a, "out": torch.addmm(b2, a, w2)}


def _backward(x, w1, w2, dout, f):
    ones = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
    dw2, db2 = f["a"].mT @ dout, dout.mT @ ones
    da = dout @ w2.mT
    dh = da.masked_fill(f["h"] <= 0, 0)
    return {"a": da, "h": dh, "w2": dw2, "b2": db2, "w1": x.mT @ dh, "b1": dh.mT @ ones}


def gradients(x, w1, b1, w2, b2, dout):
    check(SHAPES, x=x, w1=w1, b1=b1, w2=w2, b2=b2, dout=dout)
    g = _backward(x, w1, w2, dout, forward(x, w1, b1, w2, b2))
    return {**g, "x": g["h"] @ w1.mT}


def gradients_folded(x, w1, b1, w2, b2, dout):
    check(SHAPES, x=x, w1=w1, b1=b1, w2=w2, b2=b2, dout=dout)
    f = forward(x, w1, b1, w2, b2)
    g = _backward(x, w1, w2, dout, f)
    mask = (~(f["h"] <= 0)).to(x.dtype)  # as masked_fill: a NaN h passes
    folded = (w1 * mask[:, None, :]) @ w2  # (N, D, O): w1 diag(m[n]) w2, row by row
    return {**g, "x": (folded @ dout[:, :, None])[..., 0]}
