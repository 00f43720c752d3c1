"""handgrad's worked examples: the ``Case`` record and the registry ``CASES``.

To add a case, write ``manual_grads/<name>.py`` (forward, gradients, SHAPES), write
``cases/<name>.py`` with its ``CASE``, and add it to ``CASES`` below.
"""

from cases import (
    linear_xw,
    mlp_relu_mse,
    sgd_linear_regression,
    softmax_cross_entropy,
    square_mean,
    vector_backward,
)
from cases.case import Case, Example, Tolerance, registry

__all__ = ["CASES", "Case", "Example", "Tolerance", "registry"]

CASES: tuple[Case, ...] = registry(
    linear_xw.CASE,
    square_mean.CASE,
    vector_backward.CASE,
    mlp_relu_mse.CASE,
    sgd_linear_regression.CASE,
    softmax_cross_entropy.CASE,
)
