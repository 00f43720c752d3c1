"""Cross-entropy the textbook way (cs231n's ``softmax_loss_vectorized``): shift each row by
its max, exponentiate, normalise by one reciprocal a row.

Forward, N rows of V classes::

    shifted  = logits - max_v logits             (N, V)   every exp <= 1: no overflow
    counts   = exp(shifted)                      (N, V)
    logprobs = shifted - log sum_v counts        (N, V)
    loss     = -(1/N) sum_n logprobs[n, target[n]]

Backward: the shift is a constant per row (its gradient cancels, as the softmax does not
change), so ``dlogits = probs`` with 1 taken off at each target, then times ``1/N``, where
``probs = counts * (1 / sum_v counts)``: one division a row, the rest multiplications.
"""

import torch

from manual_grads._check import check

SHAPES = {"logits": "N V", "target": "N < V"}


def forward(logits, target):
    check(SHAPES, logits=logits, target=target)
    shifted = logits - logits.max(-1, keepdim=True).values
    counts = shifted.exp()
    logprobs = shifted - counts.sum(-1, keepdim=True).log()
    rows = torch.arange(logits.shape[0], device=logits.device)
    return {"shifted": shifted, "logprobs": logprobs, "loss": -logprobs[rows, target].mean()}


def gradients(logits, target):
    check(SHAPES, logits=logits, target=target)
    counts = forward(logits, target)["shifted"].exp()
    dlogits = counts * counts.sum(-1, keepdim=True).reciprocal()
    rows = torch.arange(logits.shape[0], device=logits.device)
    dlogits[rows, target] -= 1
    return {"logits": dlogits * (1.0 / logits.shape[0])}
