"""A GPT-2 transformer block, pre-norm: attention and a GELU MLP, each behind a layer norm
and a residual (the issue's item 7).

Its backward calls the op modules' own backwards, and the check of every chain-rule step
judges each link of the chain: a layer norm's ``d_xhat``, the softmax's ``d_shifted``, the
MLP's ``d_fc``, both residuals. ``y`` is a ``(B, T, C)`` tensor, checked with a
``grad_output`` ``v``.

Two things about the draws (``GptCase``). The weight matrices are drawn as a model
initialises them. Drawn standard normal, each width-C layer multiplies its input's spread
by about sqrt(C): in ``tiny_gpt`` the attention scores reach 19, softmax rows are one-hot,
layer norms divide by 0.2, and in bfloat16 the gradient is mostly rounding. The verdict is
then right to pass almost anything: autograd's own error at the draws next to the small
one (its second look) came to 0.14 to 1.2, against gradients of 0.4 to 4, and 18 wrong
reductions (a gradient averaged over an axis) passed. Over the square root of the fan-in,
autograd's error on the default draw is 1% of the gradient in bfloat16 and 0.1% in
float16, and every generic mutant fails.

And the generated shapes hold T and H to attention's ``T_MOST`` and ``H_MOST`` (its case
says why) and ``tiny_gpt``'s L to ``L_MOST``, by ``Case.most``: a draw of many layers
(L = 8192 fits the bound on the product of the sizes) repeats one block's work thousands of
times, for minutes a draw, and nothing new is computed past a few.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from cases.causal_self_attention import H_MOST, T_MOST
from handgrad import Case
from manual_grads import gpt_block

FAN_IN = {"w_qkv": "C", "w_proj": "H D", "w_fc": "C", "w_fc_proj": "F"}
L_MOST = 4


@dataclass(frozen=True)
class GptCase(Case):
    """A case whose inputs in ``fan_in`` (a name, and the size symbols its fan-in
    multiplies) are drawn standard normal over the square root of that fan-in, as a layer's
    initial weights are; every other input as ``Case.inputs`` draws it."""

    fan_in: Mapping[str, str] = field(default_factory=dict)

    def inputs(self, device="cpu", dtype=torch.float64, seed: int = 0, **dims: int):
        sizes = {**self.dims, **dims}
        drawn = super().inputs(seed=seed, **dims)  # float64 on the CPU: scaled, then cast
        for name, symbols in self.fan_in.items():
            drawn[name] = drawn[name] / math.sqrt(math.prod(sizes[s] for s in symbols.split()))
        return {k: t.to(device, dtype) if t.is_floating_point() else t.to(device)
                for k, t in drawn.items()}


CASE = GptCase(
    name="gpt_block",
    source="beyond the articles: GPT-2's block, x + attn(ln1(x)), then + mlp(ln2(.)) with GELU",
    formula="res = x + attn(ln1(x)); y = res + gelu(ln2(res) w_fc + b_fc) w_fc_proj + b_fc_proj",
    closed_form="each op's own backward, bottom-up: d_res = v + ln2'(mlp'(v)); "
                "d_x = d_res + ln1'(attn'(d_res))",
    module=gpt_block,
    output="y",
    wrt=("x", *gpt_block.PARAMETERS),
    grad_output="v",
    # The small sizes for finite differences (2, 3, 4, ...) go in this order: H and D
    # first keep the weights (C H D entries) and gradcheck's Jacobian small; C is 4 there,
    # for a layer norm over 2 features is all cancellation (see layer_norm).
    dims={"H": 2, "D": 4, "C": 8, "B": 2, "T": 5, "F": 32},
    large={"H": 2, "D": 2, "C": 4, "B": 1024, "T": 4, "F": 8},  # 4096 tokens, narrow
    variants=("gradients_train",),  # x's and the parameters' only, lean (manual_grads)
    fan_in=FAN_IN,
    most={"T": T_MOST, "H": H_MOST},
)
