"""Cross-entropy with integer targets: the loss a language model trains on.

Beyond the articles (issue 11), beside ``softmax_cross_entropy`` (probability targets).
The targets are class ids, an integer input; out-of-range or floating-point ids are
refused by name. Its forward equals ``F.cross_entropy`` (its ``library_op``),
and its examples are the soft case's, with the one-hot rows written as ids.
"""

import torch.nn.functional as F

from handgrad import Case, Example
from manual_grads import cross_entropy

CASE = Case(
    name="cross_entropy",
    source="beyond the articles: cross-entropy with integer targets, log-sum-exp form",
    formula="loss = -mean_n log_softmax(logits)[n, target[n]]",
    closed_form="d_logits = (softmax(logits) - onehot(target)) / N",
    module=cross_entropy,
    output="loss",
    wrt=("logits",),
    dims={"N": 8, "C": 10},
    large={"N": 4096, "C": 256},  # a small vocabulary's rows
    examples=(
        # Equal logits: the softmax is 1/4 everywhere, the loss ln 4, d_logits (1/4 - onehot)/2.
        Example(
            label="uniform",
            inputs={"logits": [[0.0] * 4] * 2, "target": [0, 2]},
            expected={"loss": "1.386294",  # ln 4 = 1.3862944
                      "d_logits": "-0.3750000 0.1250000 0.1250000 0.1250000 "
                                  "0.1250000 0.1250000 -0.3750000 0.1250000"},
        ),
        # Logits of +-1000: exp(1000) overflows, the shifted form does not.
        Example(
            label="large",
            inputs={"logits": [[1000.0, 0.0, -1000.0]], "target": [1]},
            expected={"loss": "1000.0000", "d_logits": "1.000000 -1.000000 0.000000"},
        ),
    ),
    library_op=lambda logits, target: F.cross_entropy(logits, target),
)
