"""What only causal_self_attention has: its forward against torch's own attention, the
lean form's forward against the full one, scores that tie, and backward under a loss."""

import torch
import torch.nn.functional as F

from cases.causal_self_attention import CASE, tied_scores
from handgrad import compare, opinions
from manual_grads import causal_self_attention as attention

LAYER = ("x", "w_qkv", "b_qkv", "w_proj", "b_proj")  # the forward's inputs, v left out


def sdpa_layer(inputs):
    """The same layer with torch's ``scaled_dot_product_attention(is_causal=True)`` at its
    core: the projections written as the hand forward writes them, nothing else shared."""
    x, w_qkv, b_qkv, w_proj, b_proj = (inputs[k] for k in LAYER)
    qkv = (x @ w_qkv.flatten(1) + b_qkv.flatten()).unflatten(-1, w_qkv.shape[1:])
    q, k, val = (part.transpose(1, 2) for part in qkv.unbind(2))  # (B, H, T, D)
    att = F.scaled_dot_product_attention(q, k, val, is_causal=True)
    return att.transpose(1, 2).flatten(2) @ w_proj.flatten(0, 1) + b_proj


def test_forward_is_scaled_dot_product_attentions(device, dtype):
    """The hand forward's ``y`` as accurate as torch's attention followed by the
    projection, by the verdict (the truth: torch's attention in float64)."""
    inputs = CASE.inputs(device, dtype)
    opinions.forward_matches(CASE, sdpa_layer, inputs,
                             "y by hand, against scaled_dot_product_attention").check()


def test_forward_is_scaled_dot_product_attentions_at_length_64(device, dtype):
    """Longer rows than the default draw's five, where torch's attention may take its
    fused path."""
    inputs = CASE.inputs(device, dtype, seed=1, B=1, T=64, C=16, H=2, D=8)
    opinions.forward_matches(CASE, sdpa_layer, inputs,
                             "y by hand at T = 64, against scaled_dot_product_attention").check()


def test_lean_forward_keeps_the_forwards_values(device, dtype):
    """``forward_saved`` (one head at a time) gives the values the full forward gives,
    as accurately: ``q, k, val``, from which ``backward_recompute`` computes ``p`` again,
    ``merged`` and ``y``."""
    inputs = CASE.inputs(device, dtype)
    kept = ("q", "k", "val", "merged", "y")

    def values(forward):
        return lambda x: {k: forward(**{n: x[n] for n in LAYER})[k] for k in kept}

    compare("forward_saved against forward", values(attention.forward_saved),
            values(attention.forward), inputs).check()


def test_backward_composes_under_a_loss(device, dtype):
    """How a model uses ``backward``: a loss ``sum(y^2) / 2`` above the layer sends
    ``d_y = y`` down, and ``backward`` with that ``d_y`` and the forward's values gives the
    loss's gradients, as accurate as autograd's through the whole, by the verdict."""
    inputs = {k: t for k, t in CASE.inputs(device, dtype).items() if k in LAYER}

    def by_hand(x):
        saved = attention.forward(**x)
        grads = attention.backward(saved["y"], x["x"], x["w_qkv"], x["w_proj"], saved)
        return {k: grads[k] for k in CASE.wrt}

    def by_autograd(x):
        leaves = {k: t.detach().requires_grad_() for k, t in x.items()}
        y = attention.forward(**leaves)["y"]
        return dict(zip(leaves, torch.autograd.grad((y * y).sum() / 2, list(leaves.values())),
                        strict=True))

    compare("backward under sum(y^2) / 2", by_hand, by_autograd, inputs).check()


def test_tied_scores_every_form(device, dtype):
    """Scores that all tie (every key 0): ``amax`` shares the row max's gradient among the
    ties, and both forms' chain through ``e`` and ``row_sum`` rounds as autograd's."""
    inputs = tied_scores(device, dtype)
    masked = CASE.forward(inputs)["masked"]
    assert (masked.tril() == 0).all()  # every score on and below the diagonal ties at 0
    assert masked.isneginf().sum() == 8 * 7 // 2  # and the mask hides the rest
    for form in CASE.forms:
        CASE.verdict(inputs, form, draw="scores that tie").check()
