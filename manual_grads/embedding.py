"""Token and position embeddings, backward by hand: the gradient of a lookup is a
scatter-add.

Forward, with shapes (B sequences of T tokens, a vocabulary of V, width C)::

    tok = wte[idx]                (B, T, C)   idx (B, T) integer ids in [0, V), wte (V, C)
    out = tok + wpe               (B, T, C)   wpe (T, C): one row per position

``tok[b, t] = wte[idx[b, t]]`` copies a row of the token table; a GPT's input is ``out``.
``wpe`` has one row per position of the context; a model with a longer table passes
``wpe[:T]``, whose rows past ``T`` then get a zero gradient. ``out`` is not a scalar: its
gradient arrives as ``v``, shaped like ``out``. ``idx`` is an input but not a variable:
ids are integers, and nothing is differentiated with respect to them.

Backward, read from the bottom up:

1. ``out = tok + wpe``, with ``wpe`` broadcast over the batch: ``d_tok = d_out (B, T, C)``,
   and ``wpe``, shared by the ``B`` sequences, gets their sum:
   ``d_wpe = sum_b d_out (T, C)``.
2. ``tok[b, t] = wte[idx[b, t]]``: row ``i`` of ``wte`` is copied to every position whose
   id is ``i``, so it gets the sum of their gradients::

       d_wte[i] = sum over (b, t) with idx[b, t] = i of d_tok[b, t]      (V, C)

   A scatter-add: start from zeros and add each ``d_tok[b, t]`` into row ``idx[b, t]``.
   Ids repeat (a token appears many times in a batch), so a plain assignment,
   ``d_wte[idx] = d_tok``, keeps one of the repeats and drops the rest; and a row whose
   id never appears gets exactly 0.

Closed form: ``d_wte = onehot(idx)^T d_out`` (the one-hot rows of ``idx``, ``(B T, V)``,
transposed, times ``d_out`` as ``(B T, C)``): the scatter-add is this matmul without the
one-hot matrix. ``d_wpe = sum_b d_out``.

Determinism and precision. The scatter-add is ``index_put_`` with ``accumulate=True``,
the op autograd uses for ``wte[idx]``. On CUDA it sorts the ids and adds each run of
repeats in one pass, in the sorted order: the same bits every run, whether or not
``torch.use_deterministic_algorithms`` is on (``index_add_``, by contrast, adds with
atomics on CUDA unless it is). On the CPU it adds the repeats in order in that mode,
which handgrad's pytest plugin turns on; out of it, torch adds large float32 scatters from
several threads with atomic adds, and the last bits can change from run to run.

It sums in the table's dtype, as autograd does. Summing a float16 table's repeats in
float32 and rounding once would be more accurate, but where the true sum passes 65504 it
rounds to inf, while float16's running sum stalls (at 32768 once each addend is below half
a unit in the last place, 16) and stays finite: 8192 repeats of 10 give inf against
autograd's 32768, and the verdict asks for a finite gradient wherever autograd's is.
"""

import torch

from manual_grads._check import check

SHAPES = {"idx": "B T < V", "wte": "V C", "wpe": "T C", "v": "B T C"}

Tensors = dict[str, torch.Tensor]


def forward(idx: torch.Tensor, wte: torch.Tensor, wpe: torch.Tensor) -> Tensors:
    """The forward pass; returns every named value, ``out`` last."""
    check(SHAPES, idx=idx, wte=wte, wpe=wpe)
    tok = wte[idx]
    return {"tok": tok, "out": tok + wpe}


def backward(idx: torch.Tensor, wte: torch.Tensor, d_out: torch.Tensor) -> Tensors:
    """The gradients given ``d_out (B, T, C)``, the upstream gradient of ``out``, and the
    ids ``idx (B, T)``; ``wte`` gives the table's size, dtype and device. Returns ``d_tok``,
    ``d_wpe`` and ``d_wte``, keyed by name, in backward order. Unchecked."""
    d_tok = d_out  # (B, T, C)  step 1: out = tok + wpe
    d_wpe = d_out.sum(0)  # (T, C)  step 1: wpe is shared by the B sequences
    zeros = torch.zeros(wte.shape, dtype=wte.dtype, device=wte.device)  # (V, C)
    d_wte = zeros.index_put_((idx,), d_tok, accumulate=True)  # (V, C)  step 2: scatter-add
    return {"tok": d_tok, "wpe": d_wpe, "wte": d_wte}


def gradients(idx: torch.Tensor, wte: torch.Tensor, wpe: torch.Tensor, v: torch.Tensor
              ) -> Tensors:
    """``J^T v`` for ``wte``, ``wpe`` and the step ``tok``, derived in the module docstring."""
    check(SHAPES, idx=idx, wte=wte, wpe=wpe, v=v)
    return backward(idx, wte, v)
