"""The articles' own numbers, reproduced by the forward, the manual side and autograd.

Checking gradients alone is not enough: a forward with a bug differentiates fine. So each
printed value is checked: forward values (losses, predictions) from the one forward, and
each gradient from both sides, on every device and dtype.
"""

import pytest

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
