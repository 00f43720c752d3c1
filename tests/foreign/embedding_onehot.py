"""Token and position embedding, the table's gradient as a one-hot matmul (as TPU code
writes a lookup, flax's ``Embed`` with ``one_hot`` and a matmul).

Forward: ``out[b, t] = wte[idx[b, t]] + wpe[t]``. Backward: ``dwte = onehot(idx)^T dout``
with the one-hot rows ``(B T, V)`` in the table's dtype; ``dwpe = sum_b dout``. The
forward is ``embedding_index_add``'s.
"""

import torch
from embedding_index_add import SHAPES, forward

from manual_grads._check import check

__all__ = ["SHAPES", "forward", "gradients"]


def gradients(idx, wte, wpe, dout):
    check(SHAPES, idx=idx, wte=wte, wpe=wpe, dout=dout)
    v, c = wte.shape
    onehot = torch.nn.functional.one_hot(idx.reshape(-1), v).to(wte.dtype)
    return {"wte": onehot.mT @ dout.reshape(-1, c), "wpe": dout.sum(0)}
