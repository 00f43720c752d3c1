"""A tiny GPT-2, every parameter's gradient by hand: embeddings, blocks, a final layer norm,
the tied output head and the cross-entropy, each backward the op's own.

Forward, with shapes (B sequences of T tokens, a vocabulary of V, width C, L blocks of H
heads of D channels and a hidden layer F wide; ``idx`` the tokens, ``target`` the next
token at every position)::

    tok, h0 = embedding(idx; wte, wpe)            (B, T, C)    wte (V, C), wpe (T, C)
    h[l+1]  = gpt_block(h[l]; layer l's weights)  (B, T, C)    for l = 0 ... L - 1
    lnf     = layer_norm(h[L]; lnf_gamma, lnf_beta)  (B, T, C)
    logits  = lnf @ wte^T                         (B, T, V)    the head, tied to wte
    loss    = cross_entropy(logits, target)       ()           over the B T positions

A block's weights are stacked along a first axis of L, one slice a layer (``w_qkv`` is
``(L, C, 3, H, D)``), so the model's inputs are a fixed list whatever its depth. The head
has no weights of its own: GPT-2 scores each token by its own embedding row, so ``wte`` is
used twice, once to look tokens up and once to score them. The values named are the
model's: ``tok``, the residual stream ``h0 ... hL``, the final layer norm's
(``lnf_mean ... lnf_xhat``, ``lnf``), ``logits``, and the cross-entropy's over the
``B T`` rows (``row_max, shifted, lse, log_p, picked``); each block's own are the
``gpt_block`` case's.

Backward. As in ``gpt_block``, nothing is derived again: each op's ``backward`` is its
link's ``J^T`` for a given upstream gradient, and the chain rule applies them from the loss
down, adding what the two uses of ``wte`` pass back. From ``d_loss = 1``:

1. ``cross_entropy.backward``: ``d_picked (B T,)``, ``d_log_p (B T, V)``,
   ``d_lse (B T, 1)``, ``d_shifted (B T, V)`` and ``d_logits (B, T, V)``, the rows back
   in ``(B, T)``.
2. ``logits = lnf @ wte^T``, a linear layer whose weight is ``wte^T``:
   ``d_lnf = d_logits @ wte (B, T, C)``, and ``wte`` gets
   ``d_logits^T @ lnf (V, C)`` summed over the ``B T`` positions (step 6).
3. ``layer_norm.backward`` with ``d_lnf``: ``d_lnf_xhat (B, T, C)``,
   ``d_lnf_gamma, d_lnf_beta (C,)``, ``d_lnf_std, d_lnf_var (B, T, 1)``,
   ``d_lnf_xc (B, T, C)``, ``d_lnf_mean (B, T, 1)``, and its ``d_x`` is ``d_hL``.
4. ``gpt_block.backward`` for l = L - 1 down to 0, each with ``d_h[l+1]``: its ``d_x`` is
   ``d_h[l] (B, T, C)``, and its weights' gradients are slice l of the stacked ones,
   ``d_w_qkv (L, C, 3, H, D)`` and the rest, complete once layer 0 is done.
5. ``embedding.backward`` with ``d_h0``: ``d_tok (B, T, C)``, ``d_wpe (T, C)``, and the
   scatter-add of ``d_tok`` into the rows of ``wte`` the ids picked.
6. ``wte``, used by the lookup and by the head: ``d_wte`` = step 5's scatter-add + step
   2's ``d_logits^T @ lnf (V, C)``. Two terms, added in either order to the same number.

Every row of ``wte`` gets a gradient through the head, since the softmax pushes every
token's score; only the rows of tokens that appear in ``idx`` get one through the lookup.

Numerics. Each op rounds as its own case describes, and the two sums of two terms (``x``
and ``res`` in a block, ``wte`` here) round alike in any order. One order is autograd's:
at one position of width 1 (``B = T = C = 1``), ``lnf`` is a 1 x 1 matrix, which
autograd's matmul backward reads as column-major, and it takes step 2's product
transposed, ``(wte^T @ d_logits^T)^T``: another BLAS kernel for the same dot product over
the vocabulary. Hypothesis found such draws with every row of ``wte`` equal, where
``d_lnf`` is 0 in exact arithmetic and each kernel leaves its own rounding: the plain
product's was 2.8 (float16) to 76 (float64) times autograd's, and which kernel is worse
changed with the number of threads. Taken in autograd's layout, the two round alike.

The training form, ``gradients_train`` (``loss_and_gradients_train`` for a step): the same
chain, only the parameters' gradients, each block by ``gpt_block``'s training form, the
final layer norm by its closed form; every value is let go once the link that reads it has
run, and the gradients can be written into the buffers of the step before (``into``).

Hypothesis also found draws (every weight 0, one token embedding of 1e-3) where
``d_lnf_beta`` is 1e-6 summed from terms of 1e-3: one rounding of the softmax's row sum
decides the last digits, on either side. ``handgrad.rounding`` is how the verdict judges
those (``tests/test_rounding.py``).
"""

import torch

from manual_grads import adamw, cross_entropy, embedding, gpt_block, layer_norm
from manual_grads._check import check
from manual_grads.cross_entropy import backward as cross_entropy_backward
from manual_grads.embedding import backward as embedding_backward
from manual_grads.gpt_block import backward as gpt_block_backward
from manual_grads.layer_norm import backward as layer_norm_backward

LAYERS = {name: f"L {gpt_block.SHAPES[name]}" for name in gpt_block.PARAMETERS}
SHAPES = {"idx": "B T < V", "target": "B T < V", "wte": "V C", "wpe": "T C", **LAYERS,
          "lnf_gamma": "C", "lnf_beta": "C"}
PARAMETERS = tuple(name for name in SHAPES if name not in ("idx", "target"))

Tensors = dict[str, torch.Tensor]


def _checked(**inputs) -> None:
    """``check``, after making sure every input is there and no other."""
    for name in [*(k for k in SHAPES if k not in inputs), *(k for k in inputs
                                                            if k not in SHAPES)]:
        raise TypeError(f"{name}: {'missing' if name in SHAPES else 'not an input'} "
                        f"(tiny_gpt takes {', '.join(SHAPES)})")
    check(SHAPES, **inputs)


def _run(idx, target, wte, wpe, lnf_gamma, lnf_beta, layers: Tensors
         ) -> tuple[Tensors, list[Tensors]]:
    """The forward: the model's values, and each block's, layer by layer."""
    e = embedding.forward(idx, wte, wpe)
    f, blocks = {"tok": e["tok"], "h0": e["out"]}, []
    for layer in range(layers["w_qkv"].shape[0]):
        blocks.append(gpt_block.forward(f[f"h{layer}"], **{k: t[layer] for k, t in
                                                         layers.items()}))
        f[f"h{layer + 1}"] = blocks[-1]["y"]
    n = layer_norm.normalize(f[f"h{len(blocks)}"], lnf_gamma, lnf_beta)
    f |= gpt_block.named("lnf", n)
    f["logits"] = f["lnf"] @ wte.T
    ce = cross_entropy.forward(f["logits"].flatten(0, 1), target.flatten())
    return f | ce, blocks


def forward(idx, target, wte, wpe, lnf_gamma, lnf_beta, **layers) -> Tensors:
    """The forward pass; returns every named value, ``loss`` last. ``layers`` are the
    blocks' stacked weights, ``ln1_gamma (L, C)`` to ``b_fc_proj (L, C)``."""
    _checked(idx=idx, target=target, wte=wte, wpe=wpe, lnf_gamma=lnf_gamma,
             lnf_beta=lnf_beta, **layers)
    return _run(idx, target, wte, wpe, lnf_gamma, lnf_beta, layers)[0]


def _through_head(d_logits: torch.Tensor, wte: torch.Tensor, lnf: torch.Tensor) -> torch.Tensor:
    """Step 2's ``d_lnf = d_logits @ wte``, in the layout autograd's matmul backward uses:
    for an ``lnf`` whose ``(B T, C)`` matrix reads as column-major (only ``B T = C = 1``),
    the transposed product ``(wte^T @ d_logits^T)^T`` (Numerics)."""
    rows = lnf.flatten(0, 1)  # (B T, C), as matmul folds it
    if rows.stride(0) == 1 and rows.stride(1) == rows.shape[0]:
        return (wte.T @ d_logits.flatten(0, 1).T).T.reshape(lnf.shape)
    return d_logits @ wte


def backward(idx, target, wte, lnf_gamma, layers: Tensors, f: Tensors, blocks: list[Tensors],
             d_loss: torch.Tensor | float = 1.0) -> Tensors:
    """Every gradient from ``d_loss`` and the forward's values (``_run``): ``d_<name>``
    keyed by name in the order the chain rule reaches them. Unchecked. ``blocks`` is used
    up: each block's values, and its steps' gradients, are let go once its backward has
    run, so that one block's ``(B, H, T, T)`` tensors are held at a time, not all of them
    (at width 256 and T = 256 the step's peak fell from 324 to 257 MiB)."""
    ce = cross_entropy_backward(f, target.flatten(), d_loss,
                                through_row_max=True)  # step 1: rows summing to 0
    d_logits = ce.pop("logits").view(f["logits"].shape)  # (B, T, V)  step 1
    d_lnf = _through_head(d_logits, wte, f["lnf"])  # (B, T, C)  step 2: lnf @ wte^T
    d_wte_head = d_logits.flatten(0, 1).T @ f["lnf"].flatten(0, 1)  # (V, C)  step 2
    n = layer_norm_backward(gpt_block.op_values("lnf", f), lnf_gamma, d_lnf)  # step 3: d_x
    d_h = {f"h{len(blocks)}": n.pop("x")}  # (B, T, C)  step 3: the last block's output
    per_layer = {k: [] for k in layers}
    for layer in reversed(range(len(blocks))):  # step 4: each block's own backward
        weights = {k: t[layer] for k, t in layers.items()}
        b = gpt_block_backward(d_h[f"h{layer + 1}"], f[f"h{layer}"], weights["ln1_gamma"],
                               weights["w_qkv"], weights["w_proj"], weights["ln2_gamma"],
                               weights["w_fc"], weights["w_fc_proj"], blocks.pop())
        d_h[f"h{layer}"] = b["x"]  # (B, T, C)  step 4: the block's input
        for k in per_layer:
            per_layer[k].insert(0, b[k])
        del b  # the block's steps, (B, H, T, T) ones among them, before the next block's
    d_layers = {k: torch.stack(g) for k, g in per_layer.items()}  # (L, ...)  step 4
    e = embedding_backward(idx, wte, d_h["h0"])  # step 5: d_tok, d_wpe, the scatter-add
    d_wte = e.pop("wte") + d_wte_head  # (V, C)  step 6: the lookup and the head
    return {**ce, "logits": d_logits, "lnf": d_lnf, **{f"lnf_{k}": t for k, t in n.items()},
            **d_h, **d_layers, **e, "wte": d_wte}


def loss_and_gradients(idx, target, wte, wpe, lnf_gamma, lnf_beta, **layers
                       ) -> tuple[torch.Tensor, Tensors]:
    """The loss and every ``d_<name>`` (module docstring), from one forward."""
    _checked(idx=idx, target=target, wte=wte, wpe=wpe, lnf_gamma=lnf_gamma,
             lnf_beta=lnf_beta, **layers)
    f, blocks = _run(idx, target, wte, wpe, lnf_gamma, lnf_beta, layers)
    return f["loss"], backward(idx, target, wte, lnf_gamma, layers, f, blocks)


def gradients(idx, target, wte, wpe, lnf_gamma, lnf_beta, **layers) -> Tensors:
    """The loss's gradient for every parameter, and every named step (module docstring)."""
    return loss_and_gradients(idx, target, wte, wpe, lnf_gamma, lnf_beta, **layers)[1]


def _run_train(idx, target, wte, wpe, lnf_gamma, lnf_beta, layers: Tensors
               ) -> tuple[Tensors, list[Tensors]]:
    """``_run``'s loss by the same operations, keeping only what ``_backward_train`` reads:
    each block's ``forward_train`` values, the final layer norm's ``xhat, std`` and output,
    the cross-entropy's ``shifted``."""
    h, blocks = embedding.forward(idx, wte, wpe)["out"], []
    for layer in range(layers["w_qkv"].shape[0]):
        blocks.append(gpt_block.forward_train(h, **{k: t[layer] for k, t in layers.items()}))
        h = blocks[-1].pop("y")
    n = layer_norm.normalize(h, lnf_gamma, lnf_beta)
    ce = cross_entropy.forward((n["y"] @ wte.T).flatten(0, 1), target.flatten())
    return {"lnf_xhat": n["xhat"], "lnf_std": n["std"], "lnf": n["y"],
            "shifted": ce["shifted"], "loss": ce["loss"]}, blocks


def _backward_train(idx, target, wte, lnf_gamma, layers: Tensors, f: Tensors,
                    blocks: list[Tensors], into: Tensors) -> Tensors:
    """``backward``'s steps 1 to 6 for the parameters alone, ``f`` and ``blocks`` used up,
    each gradient written into its buffer in ``into``."""
    d_logits = cross_entropy_backward({"shifted": f.pop("shifted")}, target.flatten(),
                                      through_row_max=True)["logits"]  # (B T, V)  step 1
    lnf = f.pop("lnf")
    torch.mm(d_logits.T, lnf.flatten(0, 1), out=into["wte"])  # (V, C)  step 2: the head
    d_h = _through_head(d_logits.view(*lnf.shape[:2], -1), wte, lnf)  # (B, T, C)  step 2
    del d_logits, lnf
    n = layer_norm.normalize_backward_fused({"xhat": f.pop("lnf_xhat"),
                                             "std": f.pop("lnf_std")}, lnf_gamma, d_h)
    into["lnf_gamma"].copy_(n["gamma"])
    into["lnf_beta"].copy_(n["beta"])
    d_h = n["x"]  # (B, T, C)  step 3
    for layer in reversed(range(len(blocks))):  # step 4
        w = {k: t[layer] for k, t in layers.items()}
        b = gpt_block.backward_train(d_h, w["ln1_gamma"], w["w_qkv"], w["w_proj"],
                                     w["ln2_gamma"], w["w_fc"], w["w_fc_proj"], blocks.pop())
        d_h = b.pop("x")
        for k, g in b.items():
            into[k][layer].copy_(g)
        del b
    e = embedding_backward(idx, wte, d_h)  # step 5
    into["wpe"].copy_(e["wpe"])
    torch.add(e["wte"], into["wte"], out=into["wte"])  # step 6: the lookup and the head
    return into


def loss_and_gradients_train(idx, target, wte, wpe, lnf_gamma, lnf_beta, into=None,
                             **layers) -> tuple[torch.Tensor, Tensors]:
    """The loss and the parameters' gradients by the training form (module docstring),
    written into ``into`` (the dict a step before returned) where given."""
    _checked(idx=idx, target=target, wte=wte, wpe=wpe, lnf_gamma=lnf_gamma,
             lnf_beta=lnf_beta, **layers)
    params = {"wte": wte, "wpe": wpe, **layers, "lnf_gamma": lnf_gamma, "lnf_beta": lnf_beta}
    if into is None:
        into = {k: torch.empty_like(p, memory_format=torch.contiguous_format)
                for k, p in params.items()}
    elif [(k, g.shape, g.dtype) for k, g in into.items()] != [
            (k, p.shape, p.dtype) for k, p in params.items()]:
        raise ValueError("into: expected a buffer like each parameter, in tiny_gpt's order "
                         f"({', '.join(params)}), got {', '.join(into)}")
    f, blocks = _run_train(idx, target, wte, wpe, lnf_gamma, lnf_beta, layers)
    loss = f.pop("loss")
    return loss, _backward_train(idx, target, wte, lnf_gamma, layers, f, blocks, into)


def gradients_train(idx, target, wte, wpe, lnf_gamma, lnf_beta, **layers) -> Tensors:
    """The loss's gradient for every parameter, by the training form (module docstring)."""
    return loss_and_gradients_train(idx, target, wte, wpe, lnf_gamma, lnf_beta, **layers)[1]


def train(params: Tensors, idx, target, steps: int, average=None, lean: bool = False,
          **hyper) -> list[tuple[torch.Tensor, Tensors]]:
    """``steps`` steps of training on hand gradients alone: the loss and every parameter's
    gradient by ``loss_and_gradients`` (with ``lean``, by ``loss_and_gradients_train``,
    into the buffers of the step before), then ``adamw.adamw_step`` with ``hyper`` (its
    keywords; torch.optim.AdamW's defaults for the rest). ``average(loss, grads)``, where
    given, replaces both by their averages over the processes of a data-parallel run
    before the step. Returns, step by step, the loss before the step and the parameters
    after it."""
    state, history, into = None, [], None
    for _ in range(steps):
        if lean:
            loss, into = loss_and_gradients_train(idx, target, into=into, **params)
            grads = into
        else:
            loss, grads = loss_and_gradients(idx, target, **params)
            grads = {k: grads[k] for k in params}
        if average is not None:
            loss, grads = average(loss, grads)
        params, state = adamw.adamw_step(params, grads, state, **hyper)
        history.append((loss, params))
    return history
