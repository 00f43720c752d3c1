"""Case F: softmax with cross-entropy, written with the log-sum-exp trick.

Not from the articles: the gradient most often derived by hand after MSE, added by
following the README's "Add a case". Its examples are ones a reader can check by hand.
"""

import torch.nn.functional as F

from handgrad import Case, Example
from manual_grads import softmax_cross_entropy

CASE = Case(
    name="softmax_cross_entropy",
    source="F (beyond the articles): softmax + cross-entropy, stable log-sum-exp form",
    formula="loss = -mean(sum(target * log_softmax(logits)))",
    closed_form="d_logits = (softmax - onehot) / N",
    module=softmax_cross_entropy,
    output="loss",
    wrt=("logits",),
    dims={"N": 6, "C": 4},
    large={"N": 4096, "C": 1024},  # a vocabulary-sized row
    examples=(
        # Equal logits: the softmax is 1/4 everywhere, the loss ln 4, d_logits (1/4 - onehot)/2.
        Example(
            label="uniform",
            inputs={"logits": [[0.0] * 4] * 2, "target": [[1, 0, 0, 0], [0, 0, 1, 0]]},
            expected={"loss": "1.386294",  # ln 4 = 1.3862944
                      "d_logits": "-0.3750000 0.1250000 0.1250000 0.1250000 "
                                  "0.1250000 0.1250000 -0.3750000 0.1250000"},
        ),
        # Logits of +-1000: exp(1000) overflows, the shifted form does not. The softmax is
        # [1, 0, 0] to double precision, the loss is 1000 - 0, d_logits = p - onehot.
        Example(
            label="large",
            inputs={"logits": [[1000.0, 0.0, -1000.0]], "target": [[0, 1, 0]]},
            expected={"loss": "1000.0000", "d_logits": "1.000000 -1.000000 0.000000"},
        ),
    ),
    library_op=lambda logits, target: F.cross_entropy(logits, target),  # soft targets
)
