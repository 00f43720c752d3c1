"""Case G: causal multi-head self-attention, GPT-2's, from the qkv projection to the output
projection (the issue's item 5; not from the articles).

Its output ``y`` is a ``(B, T, C)`` tensor, so it is checked with a ``grad_output`` ``v``
as ``vector_backward`` is. ``gradients_recompute`` is the memory-lean backward that
recomputes the softmax from ``q`` and ``k``, as fused kernels do.
"""

import torch

from handgrad import Case
from manual_grads import causal_self_attention

# The generated shapes bound the product of the sizes, not B H T^2: T = 16384 and every
# other size 1 fits that bound and makes each (B, H, T, T) a 2 GiB float64 tensor.
T_MOST = 64
# The lean form takes one head at a time in a loop of Python: a draw of thousands of heads
# (H = 4096 fits the bound as well) repeats one head's work for seconds, and checks nothing
# a few heads do not.
H_MOST = 8

CASE = Case(
    name="causal_self_attention",
    source="G (beyond the articles): GPT-2's causal self-attention, H heads, qkv and output "
           "projections",
    formula="y = merge_h(softmax(mask(q_h k_h^T / sqrt(D))) val_h) w_proj + b_proj; "
            "q, k, val = x w_qkv + b_qkv",
    closed_form="d_s = p * (d_p - rowsum(d_p * p)), d_p = d_att val^T; d_q = d_s k / sqrt(D); "
                "d_k = d_s^T q / sqrt(D); d_val = p^T d_att",
    module=causal_self_attention,
    output="y",
    wrt=("x", "w_qkv", "b_qkv", "w_proj", "b_proj"),
    grad_output="v",
    dims={"B": 2, "C": 6, "H": 2, "D": 3, "T": 5},  # T last: the small draw's T is 6, its C 3
    variants=("gradients_recompute",),
    large={"T": 4, "C": 4, "H": 2, "D": 2},  # B = 4096 sequences, short: T^2 stays small
    most={"T": T_MOST, "H": H_MOST},
)


def tied_scores(device="cpu", dtype=torch.float64):
    """Inputs whose scores all tie: one sequence of 8, one channel, one head, the keys' part
    of ``w_qkv`` 0, so every key and score is 0 and every unmasked ``e`` 1; ``x`` 0 twice,
    then 1000. Hypothesis found it: there ``d_b_qkv`` is 0 in exact arithmetic, autograd's
    chain through ``e`` and ``row_sum`` divides by whole numbers and comes out at 0, and a
    backward that multiplies by the rounded ``p = 1 / row_sum`` instead does not (the
    module docstring's step 4)."""
    inputs = {"x": torch.tensor([0.0, 0.0] + [1000.0] * 6).reshape(1, 8, 1),
              "w_qkv": torch.tensor([1.0, 0.0, 1.0]).reshape(1, 3, 1, 1),
              "b_qkv": torch.zeros(3, 1, 1), "w_proj": torch.full((1, 1, 1), 0.001),
              "b_proj": torch.zeros(1), "v": torch.full((1, 8, 1), 0.003)}
    return {k: t.to(device, dtype) for k, t in inputs.items()}
