"""The articles' own numbers, reproduced by the forward, the manual side and autograd.

Checking gradients alone is not enough: a forward with a bug differentiates fine. So each
printed value is checked: forward values (losses, predictions) from the one forward, and
each gradient from both sides, on every device and dtype.
"""

import pytest
import torch

from cases import CASES
from cases.case import assert_printed

EXAMPLES = [(case, example) for case in CASES for example in case.examples]


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"{c.name}-{e.label}" for c, e in EXAMPLES])
def test_article_numbers(example, device, dtype):
    case, ex = example
    inputs = ex.tensors(device, dtype)
    forward = case.forward(inputs)
    sides = {
        "manual": forward | {f"d_{k}": g for k, g in case.manual(inputs).items()},
        "autograd": forward | {f"d_{k}": g for k, g in case.reference(inputs).items()},
    }
    for key, text in ex.expected.items():
        for side, values in sides.items():
            assert_printed(values[key], text, f"{case.name} {ex.label} {key} ({side})")


def test_softmax_cross_entropy_forward_is_torchs(device, dtype):
    """The hand forward (log-sum-exp) against torch's own cross-entropy, soft targets."""
    case = next(c for c in CASES if c.name == "softmax_cross_entropy")
    inputs = case.inputs(device, dtype)
    target = inputs["target"].softmax(-1)  # any probability rows
    loss = case.forward({**inputs, "target": target})["loss"]
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(inputs["logits"], target))
