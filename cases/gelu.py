"""GELU as GPT-2 computes it, with the tanh approximation.

Beyond the articles (issue 11). The exact erf form is its own case, ``gelu_erf``: another
forward, so another case (the module docstring says why). Its forward equals
``F.gelu(x, approximate="tanh")`` (its ``library_op``).
"""

import torch.nn.functional as F

from handgrad import Case
from manual_grads import gelu

CASE = Case(
    name="gelu",
    source="beyond the articles: GELU, tanh approximation (GPT-2), elementwise",
    formula="y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
    closed_form="d_x = v (0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2))",
    module=gelu,
    output="y",
    wrt=("x",),
    grad_output="v",
    dims={"N": 8, "D": 16},
    library_op=lambda x: F.gelu(x, approximate="tanh"),
)
