"""Layer norm over the last axis, as a transformer normalises each token's features.

Beyond the articles (issue 11): the backward people most often derive by hand and get
wrong. Its forward equals ``F.layer_norm`` (its ``library_op``).
"""

import torch.nn.functional as F

from handgrad import Case
from manual_grads import layer_norm

CASE = Case(
    name="layer_norm",
    source="beyond the articles: layer norm, y = (x - mean) / sqrt(var + eps) * gamma + beta",
    formula="y = (x - mean(x)) / sqrt(var(x) + eps) * gamma + beta, over the last axis",
    closed_form="d_x = (d_xhat - mean(d_xhat) - xhat mean(d_xhat xhat)) / std",
    module=layer_norm,
    output="y",
    wrt=("x", "gamma", "beta"),
    grad_output="v",
    dims={"N": 6, "C": 16},
    variants=("gradients_fused",),
    library_op=lambda x, gamma, beta: F.layer_norm(x, x.shape[-1:], gamma, beta),
)
