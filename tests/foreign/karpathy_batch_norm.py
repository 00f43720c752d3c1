"""Batch norm as Karpathy's "becoming a backprop ninja" (makemore part 4) writes it: its
own forward, with Bessel's correction in the variance, and the fused one-line backward.

Forward over the batch (n = N samples), each of C features::

    bnmeani   = (1/n) sum_i hprebn                  (1, C)
    bndiff    = hprebn - bnmeani                    (N, C)
    bnvar     = 1/(n - 1) sum_i bndiff^2            (1, C)   unbiased: Bessel's n - 1
    bnvar_inv = (bnvar + 1e-5)^(-1/2)               (1, C)
    bnraw     = bndiff bnvar_inv                    (N, C)
    hpreact   = bngain bnraw + bnbias               (N, C)

Backward, for ``dhpreact``: the three paths into ``hprebn`` (direct, through the mean,
through the variance) folded into one line::

    dhprebn = bngain bnvar_inv / n (n dhpreact - sum_i dhpreact
                                    - n/(n - 1) bnraw sum_i (dhpreact bnraw))

The ``n/(n - 1)``, where layer norm has 1, is the unbiased variance's: ``d bnvar / d bndiff
= 2 bndiff / (n - 1)``. ``dbngain = sum_i bnraw dhpreact``, ``dbnbias = sum_i dhpreact``.
The variance over n - 1 is undefined for one sample: like ``F.batch_norm`` in training, a
batch of one is refused.
"""

import torch

from manual_grads._check import check

SHAPES = {"hprebn": "N C", "bngain": "1 C", "bnbias": "1 C", "dhpreact": "N C"}
EPS = 1e-5


def _sizes(**tensors: torch.Tensor) -> int:
    n = check(SHAPES, **tensors)["N"]
    if n < 2:
        raise ValueError(f"hprebn: a variance over n - 1 needs N >= 2 samples, got N={n}")
    return n


def forward(hprebn, bngain, bnbias):
    n = _sizes(hprebn=hprebn, bngain=bngain, bnbias=bnbias)
    bnmeani = 1 / n * hprebn.sum(0, keepdim=True)
    bndiff = hprebn - bnmeani
    bndiff2 = bndiff**2
    bnvar = 1 / (n - 1) * bndiff2.sum(0, keepdim=True)
    bnvar_inv = (bnvar + EPS) ** -0.5
    bnraw = bndiff * bnvar_inv
    hpreact = bngain * bnraw + bnbias
    return {"bnmeani": bnmeani, "bndiff": bndiff, "bndiff2": bndiff2, "bnvar": bnvar,
            "bnvar_inv": bnvar_inv, "bnraw": bnraw, "hpreact": hpreact}


def gradients(hprebn, bngain, bnbias, dhpreact):
    n = _sizes(hprebn=hprebn, bngain=bngain, bnbias=bnbias, dhpreact=dhpreact)
    f = forward(hprebn, bngain, bnbias)
    bnraw, bnvar_inv = f["bnraw"], f["bnvar_inv"]
    dhprebn = bngain * bnvar_inv / n * (
        n * dhpreact - dhpreact.sum(0) - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))
    return {"hprebn": dhprebn, "bngain": (bnraw * dhpreact).sum(0, keepdim=True),
            "bnbias": dhpreact.sum(0, keepdim=True)}
