"""handgrad's own cases: one record a module, and the registry ``CASES``.

To add a case, write ``manual_grads/<name>.py`` (SHAPES, forward, gradients) and
``cases/<name>.py`` with its ``CASE``, and add ``<name>`` to the import list below.
"""

from cases import (
    batch_norm,
    cross_entropy,
    embedding,
    gelu,
    gelu_erf,
    layer_norm,
    linear_xw,
    mlp_relu_mse,
    sgd_linear_regression,
    softmax_cross_entropy,
    square_mean,
    vector_backward,
)
from handgrad import registry

CASES = registry(
    linear_xw.CASE,
    square_mean.CASE,
    vector_backward.CASE,
    mlp_relu_mse.CASE,
    sgd_linear_regression.CASE,
    softmax_cross_entropy.CASE,
    layer_norm.CASE,
    batch_norm.CASE,
    gelu.CASE,
    gelu_erf.CASE,
    embedding.CASE,
    cross_entropy.CASE,
)
