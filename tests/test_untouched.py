"""A case's functions may not change what they are given (``handgrad.untouched``): a
backward that clamps or cleans its inputs in place fails, named, and cannot hand autograd
and the truth the inputs it spoiled."""

import pytest
import torch

from cases import BY_NAME
from handgrad import opinions
from handgrad.draws import LAYOUTS
from handgrad.mutants import planted
from handgrad.untouched import changes, own_copy, records

F32 = torch.float32


def clamping_v(case):
    """``case``'s backward, clamping the grad_output in place first."""
    right = case.module.gradients

    def gradients(**inputs):
        inputs["v"].clamp_(-4, 4)
        return right(**inputs)
    return planted(case, gradients=gradients)


def cleaning_x(case):
    """``case``'s backward, replacing NaN and inf in ``x`` in place first."""
    right = case.module.gradients

    def gradients(**inputs):
        inputs["x"].nan_to_num_()
        return right(**inputs)
    return planted(case, gradients=gradients)


@pytest.mark.parametrize(("spoil", "argument"), [(clamping_v, "v"), (cleaning_x, "x")],
                         ids=["v.clamp_", "x.nan_to_num_"])
def test_a_backward_that_writes_into_its_inputs_fails_named(spoil, argument):
    case = spoil(BY_NAME["layer_norm"])
    with pytest.raises(AssertionError, match=rf"layer_norm \[cpu, float32\]: gradients "
                                             rf"changed its argument {argument} in place"):
        opinions.inputs_unchanged(case, "cpu", F32)


@pytest.mark.parametrize(("spoil", "draw"), [(clamping_v, "magnitudes"),
                                             (cleaning_x, "non-finite")],
                         ids=["v.clamp_", "x.nan_to_num_"])
def test_the_verdict_sees_the_inputs_the_backward_was_given(spoil, draw):
    """Autograd and the truth get the inputs as drawn, whatever the backward wrote into its
    own: the clamped ``v`` at 1e3 and the cleaned NaN now fail the verdict too, where
    before both sides judged the spoiled inputs and passed."""
    case = spoil(BY_NAME["layer_norm"])
    verdicts = list(opinions.draw_verdicts(case, draw, "cpu", F32))
    assert not all(v.passed for v in verdicts)
    inputs = case.inputs("cpu", F32)
    before = records(inputs)
    case.verdict({**inputs, "v": inputs["v"] * 1e3})
    case.manual(inputs)
    assert changes(before, inputs) == {}


def test_a_forward_that_writes_into_its_inputs_fails_named():
    case = BY_NAME["linear_xw"]
    right = case.module.forward

    def forward(**inputs):
        inputs["y"].mul_(2)
        return right(**inputs)
    with pytest.raises(AssertionError, match=r"forward changed its argument y in place"):
        opinions.inputs_unchanged(planted(case, forward=forward), "cpu", F32)
    wrong = planted(case, forward=forward)
    inputs = wrong.inputs("cpu", F32)
    before = records(inputs)
    wrong.reference(inputs), wrong.forward(inputs)
    assert changes(before, inputs) == {}  # both were given copies


@pytest.mark.parametrize("layout", LAYOUTS, ids=list(LAYOUTS))
def test_a_copy_keeps_the_layout_in_storage_of_its_own(layout):
    t = LAYOUTS[layout](torch.randn(4, 5))
    copy = own_copy(t)
    assert (copy.shape, copy.stride(), copy.storage_offset()) == \
        (t.shape, t.stride(), t.storage_offset())
    assert torch.equal(copy, t)
    assert copy.untyped_storage().data_ptr() != t.untyped_storage().data_ptr()


def test_every_kind_of_change_is_named_and_nan_equals_itself():
    x = torch.tensor([[1.0, float("nan")], [3.0, 4.0]])
    view = x[:, 1]
    before = records({"x": x, "view": view})
    assert changes(before, {"x": x, "view": view}) == {}  # NaN: the same bits
    x[0, 0] = 5.0
    assert changes(before, {"x": x, "view": view}) == {
        "x": "its value at index (0, 0) went from 1.0 to 5.0",
        "view": "its storage outside the view was written"}
    x.t_()
    assert changes(records({"x": x.t()}), {"x": x}) == {
        "x": "its strides went from (2, 1) to (1, 2)"}
