"""Token and position embedding, the table's gradient by ``index_add_`` (as nanoGPT-style
hand backwards and PyTorch's own ``embedding_backward`` on the CPU accumulate).

Forward: ``out[b, t] = wte[idx[b, t]] + wpe[t]``. Backward: row ``i`` of ``wte`` gets the
sum of ``dout`` over every position whose id is ``i``; ``dwpe = sum_b dout``.
"""

import torch

from manual_grads._check import check

SHAPES = {"idx": "B T < V", "wte": "V C", "wpe": "T C", "dout": "B T C"}


def forward(idx, wte, wpe):
    check(SHAPES, idx=idx, wte=wte, wpe=wpe)
    return {"out": wte[idx] + wpe}


def gradients(idx, wte, wpe, dout):
    check(SHAPES, idx=idx, wte=wte, wpe=wpe, dout=dout)
    c = wte.shape[1]
    dwte = torch.zeros_like(wte).index_add_(0, idx.reshape(-1), dout.reshape(-1, c))
    return {"wte": dwte, "wpe": dout.sum(0)}
