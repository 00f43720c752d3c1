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
    e       = exp(shifted)                (B, H, T, T)
    row_sum = sum_s e                     (B, H, T, 1)
    p       = e / row_sum                 (B, H, T, T)     softmax over the keys s
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
4. The softmax, in three lines, bottom up. ``p = e / row_sum``: ``e`` gets
   ``d_p / row_sum``, and ``row_sum``, in every entry's denominator, gets
   ``d_row_sum = -sum_s d_p[s] e[s] / row_sum^2 = -sum_s(d_p * p) / row_sum (B, H, T, 1)``.
   ``row_sum = sum_s e[s]`` hands ``d_row_sum`` to every ``e``:
   ``d_e = d_p / row_sum + d_row_sum (B, H, T, T)``. ``e = exp(shifted)`` is its own
   derivative: ``d_shifted = d_e * e``. Together, with ``p = e / row_sum``::

       d_shifted = e (d_p - sum_s(d_p * p)) / row_sum = p * (d_p - sum_s(d_p * p))

   the softmax's backward: each row of ``d_p`` loses its average under ``p``, then is
   weighted by ``p``. The code keeps the three lines, autograd's order, not the closed
   form: in half precision ``p`` is ``e / row_sum`` rounded, and the closed form multiplies
   by it where the chain divides by ``row_sum`` itself. Where a row's scores tie (every
   ``e`` is 1, ``row_sum`` a whole number), the chain's rounding cancels in ``d_k``'s sums
   and the closed form's does not. On such inputs, found by hypothesis
   (the case's ``tied_scores``), ``d_b_qkv`` is 0 in exact arithmetic
   and autograd's comes out at 0 in bfloat16, ``p * d_p - p * sum`` at -0.0078 (15926
   times autograd's error); in float16, ``p * (d_p - sum)`` at 9.7 times autograd's.
5. ``shifted = masked - row_max``, and ``row_max = max_s masked`` depends on ``masked``
   too, at the row's largest entry (shared among ties, as ``amax``'s backward does):
   ``d_masked = d_shifted + d_row_max`` there, with ``d_row_max = -sum_r d_shifted[r] =
   -(sum_r p[r] d_p[r]) (1 - sum_r p[r]) = 0``, for ``p`` sums to 1: softmax ignores a
   shift of its row. Exactly 0, so not a step of its own (computed, it is rounding noise,
   which no verdict can judge), yet it is computed: it is minus the rounding error of the
   row's sum, and adding it makes each row of ``d_masked`` sum to 0 as the exact one does.
   That matters in step 7, where ``d_q = scale d_scores k`` weighs every key by its row:
   a bias shared by all keys (``b_qkv``'s key part) cancels only if the row sums to 0.
   Left out, with ``b_qkv`` times 1000, ``d_b_qkv`` came out at 11712 in bfloat16 where
   autograd's is -21.5 and the truth 4e-147: 136 times autograd's error.
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
   ``d_w_qkv = x^T @ d_qkv (C, 3, H, D)``, ``d_b_qkv = d_qkv`` summed ``(3, H, D)``, but
   for its key part, which is exactly 0: adding ``b`` to every key adds ``q_t . b / sqrt(D)``
   to each score of row t, the same for the whole row, and the softmax ignores a shift of
   its row. Summed, the key part is rounding noise, and how large depends on the order of
   the sum (hypothesis found one where it came out 2.02 times autograd's), so the
   derivation's exact 0 is written instead: the sum times 0, which keeps a NaN or inf in
   the sum non-finite, as autograd's is.

Closed form of the attention core, per head, with ``d_s`` the scores' gradient:
``d_s = p * (d_p - rowsum(d_p * p))`` with ``d_p = d_att val^T``, then
``d_q = scale d_s k``, ``d_k = scale d_s^T q``, ``d_val = p^T d_att``.

The lean form. ``gradients`` keeps every ``(B, H, T, T)`` value of the forward for the
backward (``scores, masked, shifted, e, p``), as autograd's graph keeps ``masked``, ``e``
and ``p``: at T = 1024 and 8 heads each is 32 MiB a sequence in float32. But ``p`` follows
from ``q`` and ``k``: fused attention kernels keep those and compute ``p`` again in the
backward. ``gradients_recompute`` does that, one head of a few sequences at a time (of one,
at T = 1024), as such a kernel works through blocks, so that no ``(B, H, T, T)`` tensor
ever exists; a block's ``(n, T, T)`` ones are freed before the next. It computes the whole
softmax again, ``row_max`` and ``row_sum`` too, by the forward's own operations, and takes
it through the same steps 3 to 7 as ``gradients``; where the scores round as they did in
the forward (the same kernels on the same numbers), every value is the forward's bit for bit.

It keeps no row statistic from the forward, for steps 4 and 5 hold only where ``row_sum``
is the sum of the ``e`` beside it and ``row_max`` the largest entry of its ``masked``. With
the forward's two and scores that round otherwise the second time, neither is: ``exp``
turns the scores' last-place difference, an ulp at the scores' magnitude, into a relative
one in ``e``, and a row can have no entry equal to ``row_max``, step 5's share of
``d_row_max`` then being ``d_row_max / 0``. FlashAttention folds the two statistics into one
log-sum-exp, ``lse = row_max + log(row_sum)``, and takes ``p = exp(masked - lse)``; ``lse``
is rounded at its own magnitude, that of the scores, and exp turns its last-place error
into a relative one in ``p`` too, as ``exp(log_p)`` does. With ``b_qkv`` times 1000
(scores in the thousands) the verdict rejects that form in bfloat16: 491 times autograd's
error, and still 10 times with ``lse`` kept in float32.
"""

import torch

from manual_grads._check import check

SHAPES = {"x": "B T C", "w_qkv": "C 3 H D", "b_qkv": "3 H D", "w_proj": "H D C",
          "b_proj": "C", "v": "B T C"}
SAVED = {"d_y": "B T C", "x": "B T C", "w_qkv": "C 3 H D", "w_proj": "H D C",
         "q": "B H T D", "k": "B H T D", "val": "B H T D", "merged": "B T H D",
         "masked": "B H T T", "e": "B H T T", "p": "B H T T", "row_max": "B H T 1",
         "row_sum": "B H T 1"}

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
            "row_max": row_max, "shifted": shifted, "e": e, "row_sum": row_sum, "p": p,
            "att": att, "merged": merged, "y": _project(merged, w_proj, b_proj)}


def _linear_backward(inp, w, d_out):
    """Steps 1 and 9: ``out = inp @ w + b`` over ``inp``'s and ``w``'s flattened axes."""
    flat_w = w.flatten(0, inp.dim() - 3).flatten(1)  # (I, O): inp's axes after (B, T)
    flat_in, flat_d = inp.flatten(2), d_out.flatten(2)  # (B, T, I), (B, T, O)
    d_inp = (flat_d @ flat_w.T).view(inp.shape)  # (B, T, I)
    d_w = (flat_in.flatten(0, 1).T @ flat_d.flatten(0, 1)).view(w.shape)  # (I, O)
    d_b = d_out.sum((0, 1))  # (O,)
    return d_inp, d_w, d_b


def _qkv(d_q, d_k, d_val) -> torch.Tensor:
    """Step 8: the three gradients back in ``qkv``'s layout ``(B, T, 3, H, D)``."""
    return torch.stack([d.transpose(1, 2) for d in (d_q, d_k, d_val)], 2)


def _saved(names: str, d_y, x, w_qkv, w_proj, saved) -> list[torch.Tensor]:
    """The saved values ``names`` (space-separated), each checked against ``SAVED``."""
    got = {name: saved[name] for name in names.split()}
    check(SAVED, d_y=d_y, x=x, w_qkv=w_qkv, w_proj=w_proj, **got)
    return list(got.values())


def _attention_backward(d_att, q, k, val, masked, row_max, e, row_sum, p) -> Tensors:
    """Steps 3 to 7, from ``d_att`` to ``d_q, d_k, d_val``: for every head at once, shapes
    as written, or for one head of a block of sequences, ``(n, T, T)`` and ``(n, T, D)``."""
    scale = q.shape[-1] ** -0.5
    top = masked == row_max  # (B, H, T, T)  each row's largest entries, ties sharing
    d_p = d_att @ val.mT  # (B, H, T, T)  step 3: att = p @ val
    d_val = p.mT @ d_att  # (B, H, T, D)  step 3
    d_row_sum = -(d_p * (p / row_sum)).sum(-1, keepdim=True)  # (B, H, T, 1)  step 4
    d_e = d_p / row_sum + d_row_sum  # (B, H, T, T)  step 4: p's numerator, row_sum's terms
    d_shifted = d_e * e  # (B, H, T, T)  step 4: e = exp(shifted)
    d_row_max = -d_shifted.sum(-1, keepdim=True)  # (B, H, T, 1)  step 5: 0, yet computed
    d_masked = d_shifted + top * (d_row_max / top.sum(-1, keepdim=True))  # (B, H, T, T)  step 5
    d_scores = d_masked.masked_fill(_future(q), 0)  # (B, H, T, T)  step 6: the mask
    d_q = (d_scores * scale) @ k  # (B, H, T, D)  step 7: scores = q k^T scale
    d_k = (d_scores * scale).mT @ q  # (B, H, T, D)  step 7
    return {"p": d_p, "val": d_val, "row_sum": d_row_sum, "e": d_e, "shifted": d_shifted,
            "masked": d_masked, "scores": d_scores, "q": d_q, "k": d_k}


def backward(d_y, x, w_qkv, w_proj, saved: Tensors) -> Tensors:
    """Every gradient from ``d_y (B, T, C)``, the gradient of ``y`` from above; ``saved``
    holds the forward's values (``forward``'s dict), of which it reads ``q, k, val, masked,
    row_max, e, row_sum, p, merged``; the biases' values are not needed. Returns each
    ``d_<name>`` keyed by ``<name>`` in the order the chain rule reaches them, ``x, w_qkv,
    b_qkv`` last: what a model built of this layer calls with its own ``d_y``."""
    q, k, val, masked, row_max, e, row_sum, p, merged = _saved(
        "q k val masked row_max e row_sum p merged", d_y, x, w_qkv, w_proj, saved)
    d_merged, d_w_proj, d_b_proj = _linear_backward(merged, w_proj, d_y)  # step 1
    d_att = d_merged.transpose(1, 2)  # (B, H, T, D)  step 2: heads first again
    steps = _attention_backward(d_att, q, k, val, masked, row_max, e, row_sum, p)  # 3-7
    d_qkv = _qkv(steps["q"], steps["k"], steps["val"])  # (B, T, 3, H, D)  step 8
    d_x, d_w_qkv, d_b_qkv = _linear_backward(x, w_qkv, d_qkv)  # step 9: (B, T, C), ...
    d_b_qkv[1] *= 0  # (H, D)  step 9: exactly 0 (below), and NaN where the sum is not finite
    return {"merged": d_merged, "w_proj": d_w_proj, "b_proj": d_b_proj, "att": d_att,
            **steps, "qkv": d_qkv, "x": d_x, "w_qkv": d_w_qkv, "b_qkv": d_b_qkv}


def gradients(x, w_qkv, b_qkv, w_proj, b_proj, v) -> Tensors:
    """``J^T v`` for every input but ``v``, and every step on the way (module docstring)."""
    _inputs(x, w_qkv, b_qkv, w_proj, b_proj, v)
    return backward(v, x, w_qkv, w_proj, forward(x, w_qkv, b_qkv, w_proj, b_proj))


# The lean form: p recomputed from q, k and the row statistics, a head at a time ----------

BLOCK = 2**20  # entries of a (sequences, T, T) block of the lean form: 4 MiB in float32


def _blocks(q):
    """Every head, a block of sequences at a time: as many as keep the block's
    ``(n, T, T)`` values within ``BLOCK`` entries (one sequence at T = 1024, all of them
    at T = 4). ``q[block]`` is ``(n, T, D)``, a batch axis kept even for one sequence, so
    its matmuls are the batched ones of the full form, which round as autograd's do: a
    2-D matmul takes another kernel, which in float32 came out at 1.76 times autograd's
    error where the scores tie."""
    n = max(1, BLOCK // q.shape[2] ** 2)
    return ((slice(b, b + n), h) for h in range(q.shape[1]) for b in range(0, q.shape[0], n))


def forward_saved(x, w_qkv, b_qkv, w_proj, b_proj) -> Tensors:
    """The forward keeping only what ``backward_recompute`` needs: ``q, k, val``,
    ``merged``, and ``y``. A head of a block of sequences at a time: its ``(n, T, T)``
    values are freed before the next block's."""
    _inputs(x, w_qkv, b_qkv, w_proj, b_proj)
    _, q, k, val = _heads(x, w_qkv, b_qkv)
    att, future = torch.empty_like(q), _future(q)  # (B, H, T, D), (T, T)
    for block in _blocks(q):
        masked = _scores(q[block], k[block]).masked_fill_(future, float("-inf"))  # (n, T, T)
        row_max = masked.amax(-1, keepdim=True)  # (n, T, 1)
        e = masked.sub_(row_max).exp_()  # shifted, then e, over masked
        att[block] = e.div_(e.sum(-1, keepdim=True)) @ val[block]  # p @ val, p over e
    merged = att.transpose(1, 2)
    return {"q": q, "k": k, "val": val, "merged": merged,
            "y": _project(merged, w_proj, b_proj)}


def backward_recompute(d_y, x, w_qkv, w_proj, saved: Tensors) -> Tensors:
    """``backward``'s gradients of ``x`` and the weights, from ``forward_saved``'s values:
    ``q, k, val, merged``. Each head's softmax, ``masked`` to ``p`` with its ``row_max``
    and ``row_sum``, is computed again by the forward's own operations, taken through
    steps 3 to 7, and freed with its gradients before the next head's."""
    q, k, val, merged = _saved("q k val merged", d_y, x, w_qkv, w_proj, saved)
    d_merged, d_w_proj, d_b_proj = _linear_backward(merged, w_proj, d_y)  # step 1
    d_att = d_merged.transpose(1, 2)  # (B, H, T, D)  step 2
    d_q, d_k, d_val = (torch.empty_like(q) for _ in range(3))  # (B, H, T, D)
    future = _future(q)
    for block in _blocks(q):
        masked = _scores(q[block], k[block]).masked_fill_(future, float("-inf"))  # (n, T, T)
        row_max = masked.amax(-1, keepdim=True)  # (n, T, 1)  this masked's, not the forward's
        e = (masked - row_max).exp_()  # (n, T, T)
        row_sum = e.sum(-1, keepdim=True)  # (n, T, 1)  this e's
        steps = _attention_backward(d_att[block], q[block], k[block], val[block], masked,
                                    row_max, e, row_sum, e / row_sum)
        d_q[block], d_k[block], d_val[block] = steps["q"], steps["k"], steps["val"]  # 3-7
        del masked, row_max, e, row_sum, steps
    d_qkv = _qkv(d_q, d_k, d_val)  # (B, T, 3, H, D)  step 8
    d_x, d_w_qkv, d_b_qkv = _linear_backward(x, w_qkv, d_qkv)  # step 9
    return {"w_proj": d_w_proj, "b_proj": d_b_proj, "x": d_x, "w_qkv": d_w_qkv,
            "b_qkv": d_b_qkv}


def gradients_recompute(x, w_qkv, b_qkv, w_proj, b_proj, v) -> Tensors:
    """The inputs' gradients through ``forward_saved`` and ``backward_recompute``: no
    ``(B, H, T, T)`` tensor is kept, or made."""
    _inputs(x, w_qkv, b_qkv, w_proj, b_proj, v)
    saved = forward_saved(x, w_qkv, b_qkv, w_proj, b_proj)
    return backward_recompute(v, x, w_qkv, w_proj, saved)
