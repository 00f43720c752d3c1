"""Causal multi-head self-attention as in GPT-2, backward by hand.

Forward, with shapes (B sequences of T positions, width C, H heads of D channels each;
GPT-2 has C = H D, which ``SHAPES`` cannot say, so here C is a size of its own)::

    qkv     = x @ w_qkv + b_qkv           (B, T, 3, H, D)  x (B, T, C), w_qkv (C, 3, H, D)
    q, k, val = qkv[:, :, i], heads first  (B, H, T, D)     each; b_qkv (3, H, D)
    scores  = q @ k^T * scale             (B, H, T, T)     scale = 1 / sqrt(D)
    masked  = scores where s <= t,        (B, H, T, T)     position t attends to s <= t
              -inf where s > t
    row_max = max_s masked                (B, H, T, 1)
    shifted = masked - row_max            (B, H, T, T)
    row_sum = sum_s exp(shifted)          (B, H, T, 1)
    p       = exp(shifted) / row_sum      (B, H, T, T)     softmax over the keys s
    att     = p @ val                     (B, H, T, D)     each head's output
    merged  = att, heads side by side     (B, T, H, D)
    y       = merged @ w_proj + b_proj    (B, T, C)        w_proj (H, D, C), b_proj (C,)

``w_qkv`` is GPT-2's ``(C, 3C)`` matrix of the ``c_attn`` layer (nanoGPT's ``nn.Linear``
stores its transpose) viewed as ``(C, 3, H, D)``: its column ``i C + h D + d`` is channel
``d`` of head ``h`` of the query (i = 0), key (1) or value (2). ``w_proj`` is the
``(C, C)`` matrix of ``c_proj`` with its rows viewed as ``(H, D)``, in the order ``merged``
lays the heads out. The values are called ``val``, for ``v`` is the ``grad_output``: the
gradient of ``y`` arriving from above, ``d_y = v``. Each matmul with ``qkv``'s or
``merged``'s trailing axes flattens them to one of size ``3 H D`` or ``H D``.

The mask writes ``-inf``, not a large negative number: ``exp(-inf)`` is exactly 0, so a
masked key gets exactly no weight whatever the scores' magnitude, and ``row_max`` is
always a real score, the diagonal ``s = t`` being there for every row.

Backward, read from the bottom up:

1. ``y = merged @ w_proj + b_proj``, a linear layer over the flattened ``(H D)`` axis:
   ``d_merged = d_y @ w_proj^T (B, T, H, D)``, ``d_w_proj = merged^T @ d_y (H, D, C)``
   summed over B and T, and ``d_b_proj = d_y`` summed over B and T ``(C,)``.
2. ``merged`` only moves the head axis: ``d_att = d_merged`` moved back ``(B, H, T, D)``.
3. ``att[t] = sum_s p[t, s] val[s]`` per head: ``d_p = d_att @ val^T (B, H, T, T)`` and
   ``d_val = p^T @ d_att (B, H, T, D)``.
4. The softmax ``p[s] = exp(shifted[s]) / sum_r exp(shifted[r])`` along a row has
   ``d p[s] / d shifted[r] = p[s] (delta_sr - p[r])``, so
   ``d_shifted[r] = sum_s d_p[s] p[s] (delta_sr - p[r]) = p[r] d_p[r] - p[r] sum_s d_p[s] p[s]``::

       d_shifted = p * d_p - p * sum_s(d_p * p)         (B, H, T, T)

   Each row of ``d_p`` loses its average under ``p``, then is weighted by ``p``. The two
   products come before the difference, so no term is larger than ``d_p`` and nothing
   overflows in float16 unless the result does. ``p * (d_p - sum)`` overflows wherever
   ``|d_p - sum|`` passes float16's 65504, autograd's chain (which divides by ``row_sum``
   before the difference) only past ``row_sum`` times that: with ``p = (0.6, 0.4)`` and
   ``d_p = (60000, -60000)`` it gives ``-inf`` where autograd's is ``-28800``.
5. ``shifted = masked - row_max``, and ``row_max = max_s masked`` depends on ``masked``
   too, at the row's largest entry (shared among ties, as ``amax``'s backward does):
   ``d_masked = d_shifted + d_row_max`` there, with ``d_row_max = -sum_r d_shifted[r] =
   -(sum_r p[r] d_p[r]) (1 - sum_r p[r]) = 0``, for ``p`` sums to 1: softmax ignores a
   shift of its row. Exactly 0, so not a step of its own (computed, it is rounding noise,
   which no verdict can judge), yet it is computed: it is minus the rounding error of the
   row's sum, and adding it makes each row of ``d_masked`` sum to 0 as the exact one does.
   That matters in step 7, where ``d_q = scale d_scores k`` weighs every key by its row:
   a bias shared by all keys (``b_qkv``'s key part) cancels only if the row sums to 0.
   Left out, ``d_b_qkv`` with ``b_qkv`` times 1000 came out at -14208 in bfloat16 where
   autograd's is 0 and the truth -2e-28. ``row_sum`` is inside step 4.
6. ``masked`` copies ``scores`` below and on the diagonal and writes a constant above it:
   ``d_scores = d_masked`` where ``s <= t``, exactly 0 where ``s > t`` (B, H, T, T). There
   ``p`` is 0 and so is ``d_masked``, unless a NaN or inf arrived (0 times inf is NaN): the
   constant passes no gradient back at all, as ``masked_fill``'s backward has it.
7. ``scores = (q @ k^T) * scale``: ``d_q = (d_scores * scale) @ k`` and
   ``d_k = (d_scores * scale)^T @ q (B, H, T, D)``: the query of row t gathers the keys it
   scored, each key the queries that scored it.
8. ``q, k, val`` are slices of ``qkv`` with the head axis moved: ``d_qkv`` stacks
   ``d_q, d_k, d_val`` back in place ``(B, T, 3, H, D)``.
9. ``qkv = x @ w_qkv + b_qkv`` by step 1's rule: ``d_x = d_qkv @ w_qkv^T (B, T, C)``,
   ``d_w_qkv = x^T @ d_qkv (C, 3, H, D)``, ``d_b_qkv = d_qkv`` summed ``(3, H, D)``.

Closed form of the attention core, per head:
``d_s = p * (d_p - rowsum(d_p * p))`` with ``d_p = d_att val^T``, then
``d_q = scale d_s k``, ``d_k = scale d_s^T q``, ``d_val = p^T d_att``.

The lean form. ``gradients`` keeps every ``(B, H, T, T)`` value of the forward for the
backward (``scores, masked, shifted, p``), as autograd's graph keeps ``masked``, ``exp``
and ``p``: at T = 1024 and 8 heads each is 32 MB a sequence in float32. But ``p`` follows
from ``q`` and ``k`` and two numbers a row, ``row_max`` and ``row_sum``: fused attention
kernels keep only those and compute ``p`` again in the backward. ``gradients_recompute``
does that, one head at a time, so that no ``(B, H, T, T)`` tensor ever exists; the
``(B, T, T)`` ones of a head are freed before the next. The recomputed ``p`` is
``forward_saved``'s bit for bit, the same operations on the same numbers. FlashAttention
folds the two statistics into one log-sum-exp, ``lse = row_max + log(row_sum)``, and takes
``p = exp(masked - lse)``; but ``lse`` is rounded at its own magnitude, that of the scores,
and exp turns its last-place error into a relative one in ``p``, as ``exp(log_p)`` does.
With ``b_qkv`` times 1000 (scores in the thousands) the verdict rejects that form in
bfloat16: 491 times autograd's error, and still 5 times with ``lse`` kept in float32.
"""

import torch

from manual_grads._check import check

SHAPES = {"x": "B T C", "w_qkv": "C 3 H D", "b_qkv": "3 H D", "w_proj": "H D C",
          "b_proj": "C", "v": "B T C"}
SAVED = {"d_y": "B T C", "x": "B T C", "w_qkv": "C 3 H D", "w_proj": "H D C",
         "q": "B H T D", "k": "B H T D", "val": "B H T D", "merged": "B T H D",
         "masked": "B H T T", "p": "B H T T", "row_max": "B H T 1", "row_sum": "B H T 1"}

Tensors = dict[str, torch.Tensor]


def _inputs(x, w_qkv, b_qkv, w_proj, b_proj, v=None) -> dict[str, int]:
    given = {"x": x, "w_qkv": w_qkv, "b_qkv": b_qkv, "w_proj": w_proj, "b_proj": b_proj}
    return check(SHAPES, **given, **({} if v is None else {"v": v}))


def _future(q: torch.Tensor) -> torch.Tensor:
    """``(T, T)`` for ``q (..., T, D)``: True where the key comes after the query
    (``s > t``), the entries the mask hides."""
    position = torch.arange(q.shape[-2], device=q.device)
    return position > position[:, None]  # key s (columns) > query t (rows)


def _heads(x, w_qkv, b_qkv) -> tuple[torch.Tensor, ...]:
    """``qkv`` and its three slices, heads first: ``q, k, val (B, H, T, D)``."""
    qkv = (x @ w_qkv.flatten(1) + b_qkv.flatten()).unflatten(-1, w_qkv.shape[1:])
    q, k, val = (part.transpose(1, 2) for part in qkv.unbind(2))
    return qkv, q, k, val


def _scores(q, k) -> torch.Tensor:
    """``scores`` for one head or all of them: ``q @ k^T``, then times the scale."""
    return (q @ k.mT).mul_(q.shape[-1] ** -0.5)


def _project(merged, w_proj, b_proj) -> torch.Tensor:
    return merged.flatten(2) @ w_proj.flatten(0, 1) + b_proj


def forward(x, w_qkv, b_qkv, w_proj, b_proj) -> Tensors:
    """The forward pass; returns every named value, ``y`` last."""
    _inputs(x, w_qkv, b_qkv, w_proj, b_proj)
    qkv, q, k, val = _heads(x, w_qkv, b_qkv)
    scores = _scores(q, k)
    masked = scores.masked_fill(_future(q), float("-inf"))
    row_max = masked.amax(-1, keepdim=True)
    shifted = masked - row_max
    e = shifted.exp()
    row_sum = e.sum(-1, keepdim=True)
    p = e / row_sum
    att = p @ val
    merged = att.transpose(1, 2)
    return {"qkv": qkv, "q": q, "k": k, "val": val, "scores": scores, "masked": masked,
            "row_max": row_max, "shifted": shifted, "row_sum": row_sum, "p": p, "att": att,
            "merged": merged, "y": _project(merged, w_proj, b_proj)}


def _linear_backward(inp, w, d_out):
    """Steps 1 and 9: ``out = inp @ w + b`` over ``inp``'s and ``w``'s flattened axes."""
    flat_w = w.flatten(0, inp.dim() - 3).flatten(1)  # (I, O): inp's axes after (B, T)
    flat_in, flat_d = inp.flatten(2), d_out.flatten(2)  # (B, T, I), (B, T, O)
    d_inp = (flat_d @ flat_w.T).view(inp.shape)  # (B, T, I)
    d_w = (flat_in.flatten(0, 1).T @ flat_d.flatten(0, 1)).view(w.shape)  # (I, O)
    d_b = d_out.sum((0, 1))  # (O,)
    return d_inp, d_w, d_b


def _softmax_backward(p, d_p) -> torch.Tensor:
    """Step 4: ``p * d_p - p * sum_s(d_p * p)``, along the last axis."""
    weighted = p * d_p
    return weighted.sub_(p * weighted.sum(-1, keepdim=True))


def _shift_backward(d_shifted, top) -> torch.Tensor:
    """Step 5: ``d_shifted``, less its row sum where ``top`` (``masked == row_max``, the
    row's largest entries, ties sharing): ``row_max``'s gradient, 0 in exact arithmetic,
    as ``amax``'s backward has it."""
    return d_shifted - top * (d_shifted.sum(-1, keepdim=True) / top.sum(-1, keepdim=True))


def _qkv(d_q, d_k, d_val) -> torch.Tensor:
    """Step 8: the three gradients back in ``qkv``'s layout ``(B, T, 3, H, D)``."""
    return torch.stack([d.transpose(1, 2) for d in (d_q, d_k, d_val)], 2)


def _saved(names: str, d_y, x, w_qkv, w_proj, saved) -> list[torch.Tensor]:
    """The saved values ``names`` (space-separated), each checked against ``SAVED``."""
    got = {name: saved[name] for name in names.split()}
    check(SAVED, d_y=d_y, x=x, w_qkv=w_qkv, w_proj=w_proj, **got)
    return list(got.values())


def backward(d_y, x, w_qkv, w_proj, saved: Tensors) -> Tensors:
    """Every gradient from ``d_y (B, T, C)``, the gradient of ``y`` from above; ``saved``
    holds the forward's values (``forward``'s dict), of which it reads ``q, k, val, masked,
    row_max, p, merged``; the biases' values are not needed. Returns each ``d_<name>``
    keyed by ``<name>`` in the order the chain rule reaches them, ``x, w_qkv, b_qkv``
    last: what a model built of this layer calls with its own ``d_y``."""
    q, k, val, masked, row_max, p, merged = _saved(
        "q k val masked row_max p merged", d_y, x, w_qkv, w_proj, saved)
    scale = q.shape[-1] ** -0.5
    d_merged, d_w_proj, d_b_proj = _linear_backward(merged, w_proj, d_y)  # step 1
    d_att = d_merged.transpose(1, 2)  # (B, H, T, D)  step 2: heads first again
    d_p = d_att @ val.mT  # (B, H, T, T)  step 3: att = p @ val
    d_val = p.mT @ d_att  # (B, H, T, D)  step 3
    d_shifted = _softmax_backward(p, d_p)  # (B, H, T, T)  step 4: p * (d_p - sum(d_p p))
    d_masked = _shift_backward(d_shifted, masked == row_max)  # (B, H, T, T)  step 5
    d_scores = d_masked.masked_fill(_future(q), 0)  # (B, H, T, T)  step 6: the mask
    d_q = (d_scores * scale) @ k  # (B, H, T, D)  step 7: scores = q k^T scale
    d_k = (d_scores * scale).mT @ q  # (B, H, T, D)  step 7
    d_qkv = _qkv(d_q, d_k, d_val)  # (B, T, 3, H, D)  step 8: the slices back in place
    d_x, d_w_qkv, d_b_qkv = _linear_backward(x, w_qkv, d_qkv)  # step 9: (B, T, C), ...
    return {"merged": d_merged, "w_proj": d_w_proj, "b_proj": d_b_proj, "att": d_att,
            "p": d_p, "val": d_val, "shifted": d_shifted, "masked": d_masked,
            "scores": d_scores, "q": d_q, "k": d_k, "qkv": d_qkv, "x": d_x,
            "w_qkv": d_w_qkv, "b_qkv": d_b_qkv}


def gradients(x, w_qkv, b_qkv, w_proj, b_proj, v) -> Tensors:
    """``J^T v`` for every input but ``v``, and every step on the way (module docstring)."""
    _inputs(x, w_qkv, b_qkv, w_proj, b_proj, v)
    return backward(v, x, w_qkv, w_proj, forward(x, w_qkv, b_qkv, w_proj, b_proj))


# The lean form: p recomputed from q, k and the row statistics, one head at a time ----------

def forward_saved(x, w_qkv, b_qkv, w_proj, b_proj) -> Tensors:
    """The forward keeping only what ``backward_recompute`` needs: ``q, k, val``, the
    softmax's ``row_max`` and ``row_sum``, ``merged``, and ``y``. Each head's ``(B, T, T)``
    values are freed before the next head's are computed."""
    _inputs(x, w_qkv, b_qkv, w_proj, b_proj)
    _, q, k, val = _heads(x, w_qkv, b_qkv)
    row_max, row_sum, att, future = [], [], [], _future(q)
    for h in range(q.shape[1]):
        masked = _scores(q[:, h], k[:, h]).masked_fill_(future, float("-inf"))  # (B, T, T)
        row_max.append(masked.amax(-1, keepdim=True))
        e = masked.sub_(row_max[h]).exp_()  # shifted, then its exp, over masked
        row_sum.append(e.sum(-1, keepdim=True))
        att.append(e.div_(row_sum[h]) @ val[:, h])  # p @ val, p written over e
    merged = torch.stack(att, 1).transpose(1, 2)
    return {"q": q, "k": k, "val": val, "row_max": torch.stack(row_max, 1),
            "row_sum": torch.stack(row_sum, 1), "merged": merged,
            "y": _project(merged, w_proj, b_proj)}


def backward_recompute(d_y, x, w_qkv, w_proj, saved: Tensors) -> Tensors:
    """``backward``'s gradients of ``x`` and the weights, from ``forward_saved``'s values:
    ``q, k, val, row_max, row_sum, merged``. Each head's ``p`` is computed again by the
    forward's own operations (the same numbers, bit for bit), used, and freed."""
    q, k, val, row_max, row_sum, merged = _saved(
        "q k val row_max row_sum merged", d_y, x, w_qkv, w_proj, saved)
    scale = q.shape[-1] ** -0.5
    d_merged, d_w_proj, d_b_proj = _linear_backward(merged, w_proj, d_y)  # step 1
    d_att = d_merged.transpose(1, 2)  # (B, H, T, D)  step 2
    d_q, d_k, d_val, future = [], [], [], _future(q)
    for h in range(q.shape[1]):
        masked = _scores(q[:, h], k[:, h]).masked_fill_(future, float("-inf"))  # (B, T, T)
        top = masked == row_max[:, h]  # (B, T, T)  where each row's max is, for step 5
        p = masked.sub_(row_max[:, h]).exp_().div_(row_sum[:, h])  # (B, T, T)  over masked
        d_val.append(p.mT @ d_att[:, h])  # (B, T, D)  step 3
        d_shifted = _softmax_backward(p, d_att[:, h] @ val[:, h].mT)  # steps 3 and 4
        del p, masked
        d_scores = _shift_backward(d_shifted, top).masked_fill_(future, 0).mul_(scale)
        del d_shifted, top  # d_scores: steps 5 to 7, the scale taken in
        d_q.append(d_scores @ k[:, h])  # (B, T, D)  step 7
        d_k.append(d_scores.mT @ q[:, h])  # (B, T, D)  step 7
    d_qkv = _qkv(*(torch.stack(d, 1) for d in (d_q, d_k, d_val)))  # step 8
    d_x, d_w_qkv, d_b_qkv = _linear_backward(x, w_qkv, d_qkv)  # step 9
    return {"w_proj": d_w_proj, "b_proj": d_b_proj, "x": d_x, "w_qkv": d_w_qkv,
            "b_qkv": d_b_qkv}


def gradients_recompute(x, w_qkv, b_qkv, w_proj, b_proj, v) -> Tensors:
    """The inputs' gradients through ``forward_saved`` and ``backward_recompute``: no
    ``(B, H, T, T)`` tensor is kept, or made."""
    _inputs(x, w_qkv, b_qkv, w_proj, b_proj, v)
    saved = forward_saved(x, w_qkv, b_qkv, w_proj, b_proj)
    return backward_recompute(v, x, w_qkv, w_proj, saved)
