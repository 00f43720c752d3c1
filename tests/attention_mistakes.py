"""Attention's classic mistakes for the zoo (``test_zoo.py``): each a wrong version of steps
3 to 7 of the attention backward, swapped in for ``_attention_backward``, which both forms
(``gradients`` and ``gradients_recompute``) call."""

from collections.abc import Callable
from unittest import mock

import torch

from manual_grads import causal_self_attention as attn

CORE = attn._attention_backward  # steps 3 to 7 of both forms of the attention backward


def attention_core(change: Callable) -> Callable:
    """An attention form whose steps 3 to 7 are ``change``, called as ``CORE`` is."""
    def wrong(right):
        def form(**inputs):
            with mock.patch.object(attn, "_attention_backward", change):
                return right(**inputs)
        return form
    return wrong


def again_from(d_masked, q, k) -> dict:
    """Steps 6 and 7 again, from a wrong ``d_masked``."""
    d_scores = d_masked.masked_fill(attn._future(q), 0) * q.shape[-1] ** -0.5
    return {"q": d_scores @ k, "k": d_scores.mT @ q}


def attention_lost_transpose(d_att, q, k, *rest):
    steps = CORE(d_att, q, k, *rest)
    return {**steps, "k": steps["scores"] * q.shape[-1] ** -0.5 @ q}


def attention_scale_forgotten(d_att, q, k, *rest):
    steps = CORE(d_att, q, k, *rest)
    return {**steps, "q": steps["scores"] @ k, "k": steps["scores"].mT @ q}


def attention_softmax_as_p_times_d_p(d_att, q, k, val, masked, row_max, e, row_sum, p):
    steps = CORE(d_att, q, k, val, masked, row_max, e, row_sum, p)
    return {**steps, **again_from(p * steps["p"], q, k)}


def attention_row_max_left_out(d_att, q, k, *rest):
    steps = CORE(d_att, q, k, *rest)
    return {**steps, **again_from(steps["shifted"], q, k)}


def attention_one_log_sum_exp(d_att, q, k, val, masked, row_max, e, row_sum, p):
    p = (masked - (row_max + row_sum.log())).exp()  # FlashAttention's statistic
    return CORE(d_att, q, k, val, masked, row_max, p, torch.ones_like(row_sum), p)
