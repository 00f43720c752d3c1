"""Cross-entropy from logsumexp, backward fused to ``softmax - onehot`` (llm.c's
``crossentropy_softmax_backward``, with ``dloss = 1/N`` for the mean).

Forward, N rows of V classes::

    lse  = log sum_v exp(logits)           (N,)   torch.logsumexp, stable
    loss = (1/N) sum_n (lse - logits[n, target[n]])

Backward: ``d lse / d logits = softmax = exp(logits - lse)``, and the picked logit gets
-1, so ``dlogits = (exp(logits - lse) - onehot(target)) / N``.
"""

import torch

from manual_grads._check import check

SHAPES = {"logits": "N V", "target": "N < V"}


def forward(logits, target):
    check(SHAPES, logits=logits, target=target)
    lse = torch.logsumexp(logits, -1)
    picked = logits.gather(-1, target[:, None])[:, 0]
    return {"lse": lse, "loss": (lse - picked).mean()}


def gradients(logits, target):
    check(SHAPES, logits=logits, target=target)
    lse = forward(logits, target)["lse"]
    onehot = torch.nn.functional.one_hot(target, logits.shape[-1]).to(logits.dtype)
    return {"logits": (torch.exp(logits - lse[:, None]) - onehot) / logits.shape[0]}
