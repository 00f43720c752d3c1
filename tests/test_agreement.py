"""Manual gradient == autograd, for every case, device and dtype.

``assert_close`` compares the dicts key by key, so a failure names the parameter, the
number of mismatched elements, the worst index and its absolute and relative errors.
"""

import pytest
import torch

from cases import CASES


def test_manual_matches_autograd(case, device, dtype):
    inputs = case.inputs(device, dtype)
    manual = case.manual(inputs)
    reference = case.reference(inputs)
    assert manual.keys() == set(case.wrt)
    torch.testing.assert_close(manual, reference, **case.tolerance(dtype))


def test_every_chain_rule_step_matches_autograd(case, device, dtype):
    """Not only the inputs' gradients: the gradient at every intermediate value too, so a
    wrong step is named even where a later step happens to hide it."""
    inputs = case.inputs(device, dtype)
    steps = case.manual(inputs, steps=True)
    torch.testing.assert_close(steps, case.reference(inputs, steps=True), **case.tolerance(dtype))


VARIANTS = [(case, form) for case in CASES for form in case.variants]


@pytest.mark.parametrize("variant", VARIANTS, ids=[f"{c.name}-{f}" for c, f in VARIANTS])
def test_variant_matches_autograd(variant, device, dtype):
    case, form = variant
    inputs = case.inputs(device, dtype)
    torch.testing.assert_close(case.manual(inputs, form), case.reference(inputs),
                               **case.tolerance(dtype, form))


def test_gradient_has_the_shape_of_its_input(case, device):
    """``w.grad`` has the shape of ``w``: the column-not-row answer of example A, checked."""
    inputs = case.inputs(device)
    for name, grad in case.manual(inputs).items():
        assert grad.shape == inputs[name].shape, name
        assert grad.dtype == inputs[name].dtype, name
        assert grad.device == inputs[name].device, name
