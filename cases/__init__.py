"""handgrad's own cases: one record a module, and the registry ``CASES``.

To add a case, write ``manual_grads/<name>.py`` (SHAPES, forward, gradients) and
``cases/<name>.py`` with its ``CASE``, and add ``"<name>"`` to ``NAMES`` below: the one
line. The order of ``NAMES`` is the order of every table.
"""

from importlib import import_module

from handgrad import registry

NAMES = (
    "linear_xw",
    "square_mean",
    "vector_backward",
    "mlp_relu_mse",
    "sgd_linear_regression",
    "softmax_cross_entropy",
    "layer_norm",
    "batch_norm",
    "gelu",
    "gelu_erf",
    "embedding",
    "cross_entropy",
    "causal_self_attention",
    "gpt_block",
    "tiny_gpt",
)

CASES = registry(*(import_module(f"cases.{name}").CASE for name in NAMES))
BY_NAME = {case.name: case for case in CASES}
