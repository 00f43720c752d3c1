"""GELU in its exact form, ``x Phi(x)`` with erf: ``F.gelu``'s default.

Beyond the articles (issue 11), beside ``gelu`` (the tanh approximation GPT-2 uses): two
forwards, so two cases. Its forward equals ``F.gelu(x)`` (its ``library_op``).
"""

import torch.nn.functional as F

from handgrad import Case
from manual_grads import gelu_erf

CASE = Case(
    name="gelu_erf",
    source="beyond the articles: GELU, exact erf form, elementwise",
    formula="y = x Phi(x) = 0.5 x (1 + erf(x / sqrt(2)))",
    closed_form="d_x = v (Phi(x) + x phi(x)), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)",
    module=gelu_erf,
    output="y",
    wrt=("x",),
    grad_output="v",
    dims={"N": 8, "D": 16},
    library_op=lambda x: F.gelu(x),
)
