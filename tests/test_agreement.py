"""Manual gradient == autograd, for every case, device and dtype.

``Case.assert_close`` runs ``torch.testing.assert_close`` gradient by gradient; a failure
names the case, device, dtype and gradient, the number of mismatched elements, the worst
index, its absolute and relative errors, and both sides' values there.
"""

import pytest

from cases import CASES


def test_manual_matches_autograd(case, device, dtype):
    inputs = case.inputs(device, dtype)
    manual = case.manual(inputs)
    reference = case.reference(inputs)
    assert manual.keys() == set(case.wrt)
    case.assert_close(manual, reference)


def test_every_chain_rule_step_matches_autograd(case, device, dtype):
    """Not only the inputs' gradients: the gradient at every intermediate value too, so a
    wrong step is named even where a later step happens to hide it."""
    inputs = case.inputs(device, dtype)
    steps = case.manual(inputs, steps=True)
    case.assert_close(steps, case.reference(inputs, steps=True))


VARIANTS = [(case, form) for case in CASES for form in case.variants]


@pytest.mark.parametrize("variant", VARIANTS, ids=[f"{c.name}-{f}" for c, f in VARIANTS])
def test_variant_matches_autograd(variant, device, dtype):
    case, form = variant
    inputs = case.inputs(device, dtype)
    case.assert_close(case.manual(inputs, form), case.reference(inputs), form)


def test_gradient_has_the_shape_of_its_input(case, device):
    """``w.grad`` has the shape of ``w``: the column-not-row answer of example A, checked."""
    inputs = case.inputs(device)
    for name, grad in case.manual(inputs).items():
        assert grad.shape == inputs[name].shape, name
        assert grad.dtype == inputs[name].dtype, name
        assert grad.device == inputs[name].device, name


def test_gradients_into_writes_only_into_its_buffers():
    """The buffered MLP backward allocates no gradient: it returns its buffers, and the
    steps between (``d_out``, ``d_l1``) are written into theirs."""
    from manual_grads.mlp_relu_mse import gradient_buffers, gradients_into

    case = next(c for c in CASES if c.name == "mlp_relu_mse")
    inputs = case.inputs(**case.small_dims)
    buffers = gradient_buffers(**inputs)
    grads = gradients_into(**inputs, buffers=buffers)
    for name, grad in grads.items():
        assert grad.data_ptr() == buffers[name].data_ptr(), name
    steps = case.manual(inputs, steps=True)
    case.assert_close({"out": buffers["d_out"], "l1": buffers["d_l1"]},
                      {"out": steps["out"], "l1": steps["l1"]})
