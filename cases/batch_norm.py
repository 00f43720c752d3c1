"""Batch norm in training mode: each feature normalised over the batch.

Beyond the articles (issue 11). Its forward equals ``F.batch_norm(training=True)`` (its
``library_op``), and its running statistics the buffers that call updates
(``tests/test_ops_forward.py``).
"""

import torch.nn.functional as F

from handgrad import Case
from manual_grads import batch_norm


def walkthrough():
    yield ("The steps' code is layer_norm's: normalize_backward, and for the fused form "
           "normalize_backward_fused, with dim=0, the batch axis.")


CASE = Case(
    name="batch_norm",
    source="beyond the articles: batch norm in training mode, over the batch axis",
    formula="y = (x - mean_n(x)) / sqrt(var_n(x) + eps) * gamma + beta, biased var_n",
    closed_form="d_x = (d_xhat - mean_n(d_xhat) - xhat mean_n(d_xhat xhat)) / std",
    module=batch_norm,
    output="y",
    wrt=("x", "gamma", "beta"),
    grad_output="v",
    dims={"N": 16, "C": 4},
    variants=("gradients_fused",),
    walkthrough=walkthrough,
    library_op=lambda x, gamma, beta: F.batch_norm(x, None, None, gamma, beta,
                                                      training=True),
)
