"""Case G: causal multi-head self-attention, GPT-2's, from the qkv projection to the output
projection (the issue's item 5; not from the articles).

Its output ``y`` is a ``(B, T, C)`` tensor, so it is checked with a ``grad_output`` ``v``
as ``vector_backward`` is. ``gradients_recompute`` is the memory-lean backward that
recomputes each head's softmax from saved row statistics, as fused kernels do.
"""

from handgrad import Case
from manual_grads import causal_self_attention

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
)
