"""A GPT-2 transformer block, pre-norm, its backward composed from the ops' own backwards.

Forward, with shapes (B sequences of T positions, width C, H heads of D channels, a hidden
layer F wide; GPT-2 has C = H D and F = 4 C, which ``SHAPES`` cannot say, so each is a size
of its own)::

    ln1  = layer_norm(x; ln1_gamma, ln1_beta)       (B, T, C)   layer_norm.normalize
    attn = attention(ln1; w_qkv, b_qkv,             (B, T, C)   causal_self_attention
                     w_proj, b_proj)
    res  = x + attn                                 (B, T, C)   the first residual
    ln2  = layer_norm(res; ln2_gamma, ln2_beta)     (B, T, C)
    fc   = ln2 @ w_fc + b_fc                        (B, T, F)   w_fc (C, F), b_fc (F,)
    gelu = gelu(fc)                                 (B, T, F)   the tanh form, gelu.values
    mlp  = gelu @ w_fc_proj + b_fc_proj             (B, T, C)   w_fc_proj (F, C), b_fc_proj (C,)
    y    = res + mlp                                (B, T, C)   the second residual

Each op's own values come along under its name: ``ln1_mean, ln1_xc, ln1_var, ln1_std,
ln1_xhat`` (and ``ln2_...``), ``attn_qkv, attn_q, ..., attn_p, attn_att, attn_merged``,
``gelu_u, gelu_t``. ``y`` is not a scalar: its gradient arrives as ``v``.

Backward. Nothing here is derived again. The block is a chain of functions, and the chain
rule says the gradient of a chain is each link's ``J^T`` applied in turn from the top, each
to what the link's output received; each op module's ``backward`` is exactly its link's
``J^T``, for a given upstream gradient, derived and checked in its own case. The block
calls them bottom-up against the forward, and where a value is used twice (``x`` and
``res``: each by a layer norm and by a residual) it adds what both uses pass back, the
multivariate chain rule's sum over paths. Step by step, from ``d_y = v``:

1. ``y = res + mlp``: ``d_mlp = d_y (B, T, C)``; ``res`` gets ``d_y`` too (step 6).
2. ``mlp = gelu @ w_fc_proj + b_fc_proj``: the linear layer's backward (``mlp_relu_mse``'s
   step 3, ``linear_backward``, over the ``B T`` rows): ``d_gelu (B, T, F)``,
   ``d_w_fc_proj (F, C)``, ``d_b_fc_proj (C,)``.
3. ``gelu.backward`` with ``d_gelu``: ``d_gelu_t, d_gelu_u (B, T, F)``, and its ``d_x`` is
   ``d_fc (B, T, F)``.
4. ``fc = ln2 @ w_fc + b_fc``, step 2's rule: ``d_ln2 (B, T, C)``, ``d_w_fc (C, F)``,
   ``d_b_fc (F,)``.
5. ``layer_norm.backward`` with ``d_ln2``: ``d_ln2_xhat (B, T, C)``, ``d_ln2_gamma (C,)``,
   ``d_ln2_beta (C,)``, ``d_ln2_std (B, T, 1)``, ``d_ln2_var (B, T, 1)``,
   ``d_ln2_xc (B, T, C)``, ``d_ln2_mean (B, T, 1)``, and what ``res`` gets through ``ln2``.
6. ``res``, used by ``ln2`` and by ``y``: ``d_res = d_y + ln2's d_x (B, T, C)``; the layer
   norm's backward adds the two, given ``d_y`` (see Numerics).
7. ``res = x + attn``: ``d_attn = d_res (B, T, C)``; ``x`` gets ``d_res`` too (step 10).
8. ``causal_self_attention.backward`` with ``d_attn``: ``d_attn_merged (B, T, H, D)``,
   ``d_w_proj (H, D, C)``, ``d_b_proj (C,)``, ``d_attn_att, d_attn_val (B, H, T, D)``,
   ``d_attn_p, d_attn_shifted, d_attn_masked, d_attn_scores (B, H, T, T)``,
   ``d_attn_q, d_attn_k (B, H, T, D)``, ``d_attn_qkv (B, T, 3, H, D)``, ``d_w_qkv
   (C, 3, H, D)``, ``d_b_qkv (3, H, D)``, and its ``d_x`` is ``d_ln1 (B, T, C)``.
9. ``layer_norm.backward`` with ``d_ln1``: ``d_ln1_xhat`` to ``d_ln1_mean`` as in step 5,
   ``d_ln1_gamma, d_ln1_beta (C,)``, and what ``x`` gets through ``ln1``.
10. ``x``, used by ``ln1`` and by ``res``: ``d_x = d_res + ln1's d_x (B, T, C)``, added by
    the layer norm's backward, given ``d_res``.

Every value named above is a chain-rule step that the case checks against autograd, so a
wrong link is named where it goes wrong, not at the inputs.

Numerics. A layer norm's input gets three terms: the residual's gradient, ``d_xc`` and
``d_mean / C``. Autograd adds them in that order, and so does ``layer_norm.backward`` when
it is given the first; so does the closed form (``normalize_backward_fused``), which then
takes ``(rest - <rest>) / std`` as its two terms, ``rest / std`` and minus its mean.
Adding the last two first is exact in exact arithmetic too, but where they cancel (over a
single feature they take each other out, ``d_xc`` being ``d_xhat / sqrt(eps)``) it keeps
bits that autograd's order loses: at ``C = 1`` the exact ``d_x`` came out, 2.4e-4 away
from autograd's, which the float64 verdict rejected (it measures autograd's rounding by
how much it varies, and this loss does not vary).

``forward`` and ``backward`` are what ``tiny_gpt`` calls, once a layer.

The training form, ``gradients_train``: the same chain, only ``x``'s and the parameters'
gradients, for a training step rather than for teaching. ``forward_train`` keeps only
what the backward reads (no layer norm's ``mean``, ``xc`` or ``var``, no ``(B, H, T, T)``
value: the attention's ``forward_saved``), and ``backward_train`` lets each value go once
its link has run. Each link takes its lean form: the layer norms their closed form
(``layer_norm.normalize_backward_fused``, given the residual's gradient: see Numerics), the
attention ``backward_recompute``, which computes ``p`` again a block at a time, and GELU
in place (``gelu.values_kept`` and ``gelu.backward_x``: the same roundings as ``values``
and ``backward``, fewer buffers).
"""

import torch

from manual_grads import causal_self_attention as attention
from manual_grads import gelu, layer_norm, mlp_relu_mse
from manual_grads._check import check
from manual_grads.causal_self_attention import backward as attention_backward
from manual_grads.causal_self_attention import backward_recompute, forward_saved
from manual_grads.gelu import backward as gelu_backward
from manual_grads.layer_norm import backward as layer_norm_backward

SHAPES = {"x": "B T C", "ln1_gamma": "C", "ln1_beta": "C", "w_qkv": "C 3 H D",
          "b_qkv": "3 H D", "w_proj": "H D C", "b_proj": "C", "ln2_gamma": "C",
          "ln2_beta": "C", "w_fc": "C F", "b_fc": "F", "w_fc_proj": "F C", "b_fc_proj": "C",
          "v": "B T C"}
PARAMETERS = tuple(name for name in SHAPES if name not in ("x", "v"))

Tensors = dict[str, torch.Tensor]


def named(prefix: str, values: Tensors) -> Tensors:
    """An op's values under the block's names: its output ``y`` as ``prefix``, every other
    value as ``prefix_<name>``."""
    return {prefix if k == "y" else f"{prefix}_{k}": t for k, t in values.items()}


def op_values(prefix: str, values: Tensors) -> Tensors:
    """The op's own values back from the block's names: what its backward reads."""
    start = len(prefix) + 1
    return {"y" if k == prefix else k[start:]: t for k, t in values.items()
            if k == prefix or k.startswith(prefix + "_")}


def linear_backward(inp, w, d_out):
    """``out = inp @ w + b`` for ``inp (B, T, I)``: ``mlp_relu_mse.linear_backward`` on the
    ``B T`` rows, ``d_inp`` back in ``inp``'s shape."""
    d_inp, d_w, d_b = mlp_relu_mse.linear_backward(inp.flatten(0, -2), w, d_out.flatten(0, -2))
    return d_inp.view(inp.shape), d_w, d_b


def forward(x, ln1_gamma, ln1_beta, w_qkv, b_qkv, w_proj, b_proj, ln2_gamma, ln2_beta,
            w_fc, b_fc, w_fc_proj, b_fc_proj) -> Tensors:
    """The forward pass; returns every named value, ``y`` last."""
    check(SHAPES, x=x, ln1_gamma=ln1_gamma, ln1_beta=ln1_beta, w_qkv=w_qkv, b_qkv=b_qkv,
          w_proj=w_proj, b_proj=b_proj, ln2_gamma=ln2_gamma, ln2_beta=ln2_beta, w_fc=w_fc,
          b_fc=b_fc, w_fc_proj=w_fc_proj, b_fc_proj=b_fc_proj)
    f = named("ln1", layer_norm.normalize(x, ln1_gamma, ln1_beta))
    f |= named("attn", attention.forward(f["ln1"], w_qkv, b_qkv, w_proj, b_proj))
    f["res"] = x + f["attn"]
    f |= named("ln2", layer_norm.normalize(f["res"], ln2_gamma, ln2_beta))
    f["fc"] = f["ln2"] @ w_fc + b_fc
    f |= named("gelu", gelu.values(f["fc"]))
    f["mlp"] = f["gelu"] @ w_fc_proj + b_fc_proj
    f["y"] = f["res"] + f["mlp"]
    return f


def backward(d_y, x, ln1_gamma, w_qkv, w_proj, ln2_gamma, w_fc, w_fc_proj, f: Tensors
             ) -> Tensors:
    """Every gradient from ``d_y (B, T, C)``, the gradient of ``y`` from above, and
    ``f = forward(...)``; the biases and ``beta``s are not needed. Returns each
    ``d_<name>`` keyed by ``<name>`` in the order the chain rule reaches them, ``x`` last:
    what a model of these blocks calls with its own ``d_y``. Unchecked."""
    d_mlp = d_y  # (B, T, C)  step 1: y = res + mlp
    d_gelu, d_w_fc_proj, d_b_fc_proj = linear_backward(f["gelu"], w_fc_proj, d_mlp)  # step 2
    g = gelu_backward(op_values("gelu", f), f["fc"], d_gelu)  # step 3: d_t, d_u, d_x = d_fc
    d_fc = g.pop("x")  # (B, T, F)  step 3
    d_ln2, d_w_fc, d_b_fc = linear_backward(f["ln2"], w_fc, d_fc)  # step 4
    n2 = layer_norm_backward(op_values("ln2", f), ln2_gamma, d_ln2, d_y)  # steps 5, 6: ... d_x
    d_res = n2.pop("x")  # (B, T, C)  step 6: res feeds y (d_y) and ln2
    d_attn = d_res  # (B, T, C)  step 7: res = x + attn
    a = attention_backward(d_attn, f["ln1"], w_qkv, w_proj, op_values("attn", f))  # step 8
    d_ln1 = a.pop("x")  # (B, T, C)  step 8: the attention's input
    n1 = layer_norm_backward(op_values("ln1", f), ln1_gamma, d_ln1, d_res)  # steps 9, 10
    d_x = n1.pop("x")  # (B, T, C)  step 10: x feeds res (d_res) and ln1
    params = ("w_qkv", "b_qkv", "w_proj", "b_proj")
    return {"mlp": d_mlp, "gelu": d_gelu, "w_fc_proj": d_w_fc_proj, "b_fc_proj": d_b_fc_proj,
            **{f"gelu_{k}": t for k, t in g.items()}, "fc": d_fc, "ln2": d_ln2,
            "w_fc": d_w_fc, "b_fc": d_b_fc, **{f"ln2_{k}": t for k, t in n2.items()},
            "res": d_res, "attn": d_attn,
            **{k if k in params else f"attn_{k}": t for k, t in a.items()}, "ln1": d_ln1,
            **{f"ln1_{k}": t for k, t in n1.items()}, "x": d_x}


def gradients(x, ln1_gamma, ln1_beta, w_qkv, b_qkv, w_proj, b_proj, ln2_gamma, ln2_beta,
              w_fc, b_fc, w_fc_proj, b_fc_proj, v) -> Tensors:
    """``J^T v`` for ``x``, every parameter and every step (module docstring)."""
    check(SHAPES, x=x, v=v)
    f = forward(x, ln1_gamma, ln1_beta, w_qkv, b_qkv, w_proj, b_proj, ln2_gamma, ln2_beta,
                w_fc, b_fc, w_fc_proj, b_fc_proj)
    return backward(v, x, ln1_gamma, w_qkv, w_proj, ln2_gamma, w_fc, w_fc_proj, f)


# The training form: x's and the parameters' gradients, what the backward reads kept --------

ATTENTION_SAVED = ("q", "k", "val", "merged")


def forward_train(x, ln1_gamma, ln1_beta, w_qkv, b_qkv, w_proj, b_proj, ln2_gamma, ln2_beta,
                  w_fc, b_fc, w_fc_proj, b_fc_proj) -> Tensors:
    """``forward``'s ``y`` by the same operations, and only what ``backward_train`` reads:
    each layer norm's ``xhat``, ``std`` and output, the attention's ``forward_saved``
    values, ``fc``, GELU's ``t`` and output. Unchecked: what a model calls, once a layer."""
    n1 = layer_norm.normalize(x, ln1_gamma, ln1_beta)
    a = forward_saved(n1["y"], w_qkv, b_qkv, w_proj, b_proj)
    res = x + a.pop("y")
    n2 = layer_norm.normalize(res, ln2_gamma, ln2_beta)
    fc = n2["y"] @ w_fc + b_fc
    t, g = gelu.values_kept(fc)
    y = res + (g @ w_fc_proj + b_fc_proj)
    return {"ln1_xhat": n1["xhat"], "ln1_std": n1["std"], "ln1": n1["y"],
            **{f"attn_{k}": a[k] for k in ATTENTION_SAVED}, "ln2_xhat": n2["xhat"],
            "ln2_std": n2["std"], "ln2": n2["y"], "fc": fc, "gelu_t": t, "gelu": g, "y": y}


def _norm_backward(saved: Tensors, prefix: str, gamma, d_out, d_other) -> Tensors:
    """A layer norm's closed-form backward, ``saved``'s values under ``prefix`` used up;
    ``x`` gets ``d_other``, what its other use (the residual) passed back, added in
    autograd's order (Numerics)."""
    f = {"xhat": saved.pop(f"{prefix}_xhat"), "std": saved.pop(f"{prefix}_std")}
    return layer_norm.normalize_backward_fused(f, gamma, d_out, d_x=d_other)


def backward_train(d_y, ln1_gamma, w_qkv, w_proj, ln2_gamma, w_fc, w_fc_proj, saved: Tensors
                   ) -> Tensors:
    """``x``'s and the parameters' gradients from ``d_y (B, T, C)`` and ``saved =
    forward_train(...)``, which is used up: each value is let go once its link has run.
    The steps are ``backward``'s; keyed by name, ``x`` last. Unchecked."""
    d_gelu, d_w_fc_proj, d_b_fc_proj = linear_backward(saved.pop("gelu"), w_fc_proj, d_y)
    d_fc = gelu.backward_x(saved.pop("gelu_t"), saved.pop("fc"), d_gelu)  # steps 1 to 3
    del d_gelu
    d_ln2, d_w_fc, d_b_fc = linear_backward(saved.pop("ln2"), w_fc, d_fc)  # step 4
    del d_fc
    n2 = _norm_backward(saved, "ln2", ln2_gamma, d_ln2, d_y)  # steps 5 and 6: d_res
    del d_ln2
    a = backward_recompute(n2["x"], saved.pop("ln1"), w_qkv, w_proj,  # steps 7 and 8
                           {k: saved.pop(f"attn_{k}") for k in ATTENTION_SAVED})
    a["b_qkv"][1] *= 0  # the key part: exactly 0, as in ``causal_self_attention.backward``
    n1 = _norm_backward(saved, "ln1", ln1_gamma, a.pop("x"), n2["x"])  # steps 9 and 10
    return {"w_fc_proj": d_w_fc_proj, "b_fc_proj": d_b_fc_proj, "w_fc": d_w_fc, "b_fc": d_b_fc,
            "ln2_gamma": n2["gamma"], "ln2_beta": n2["beta"], **a,
            "ln1_gamma": n1["gamma"], "ln1_beta": n1["beta"], "x": n1["x"]}


def gradients_train(x, ln1_gamma, ln1_beta, w_qkv, b_qkv, w_proj, b_proj, ln2_gamma,
                    ln2_beta, w_fc, b_fc, w_fc_proj, b_fc_proj, v) -> Tensors:
    """``J^T v`` for ``x`` and every parameter by the training form (module docstring)."""
    check(SHAPES, x=x, ln1_gamma=ln1_gamma, ln1_beta=ln1_beta, w_qkv=w_qkv, b_qkv=b_qkv,
          w_proj=w_proj, b_proj=b_proj, ln2_gamma=ln2_gamma, ln2_beta=ln2_beta, w_fc=w_fc,
          b_fc=b_fc, w_fc_proj=w_fc_proj, b_fc_proj=b_fc_proj, v=v)
    saved = forward_train(x, ln1_gamma, ln1_beta, w_qkv, b_qkv, w_proj, b_proj, ln2_gamma,
                          ln2_beta, w_fc, b_fc, w_fc_proj, b_fc_proj)
    del saved["y"]
    return backward_train(v, ln1_gamma, w_qkv, w_proj, ln2_gamma, w_fc, w_fc_proj, saved)
