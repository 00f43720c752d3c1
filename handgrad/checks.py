"""The generic checks: pytest tests over every declared case, device and dtype.

Not collected on their own: the plugin (``handgrad.plugin``) collects this module once
for every ``conftest.py`` that declares ``handgrad_cases``, parametrised by those cases,
so a project checks its own gradients with no copy of these tests. Each test says what it
checks; a failure message names the case, device, dtype, gradient and draw.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from handgrad import function_checks, mutants, opinions, probes
from handgrad.case import dtype_name
from handgrad.generated import generated_holds
from handgrad.measure import measure
from handgrad.report import LIMIT
from handgrad.strategies import case_inputs


def _holds(case, draw: str, device, dtype, form: str = "gradients", steps: bool = False):
    """Every verdict of one draw holds, or an opt-out covers what fails (``all_hold``)."""
    opinions.all_hold(opinions.draw_verdicts(case, draw, device, dtype, form, steps), case,
                      None if steps else form, dtype)


def test_agrees_with_autograd(case, form, device, dtype):
    """Manual against autograd on the case's default draw, by the verdict."""
    _holds(case, "default", device, dtype, form)


def test_every_chain_rule_step(case, device, dtype):
    """The gradient at every intermediate value the backward names, not only the inputs':
    a wrong step is named even where a later step happens to hide it."""
    _holds(case, "default", device, dtype, steps=True)


@pytest.mark.slow
def test_large_sizes(case, form, device, dtype):
    """The batch axis at 4096 or more (``Case.large_dims``): a derivation wrong only above
    some size fails."""
    _holds(case, "large", device, dtype, form)


def test_every_size_one(case, form, device, dtype):
    """Every symbolic size 1 (or its ``least``): a batch of one, and every unit axis a
    squeeze could eat."""
    _holds(case, "size one", device, dtype, form)


def test_equal_sizes(case, form, device, dtype):
    """Every size symbol at one common size: a gradient summed over the wrong one of two
    axes keeps its shape only where they are equal, and fails there."""
    _holds(case, "equal sizes", device, dtype, form)


def test_non_contiguous_layouts(case, form, device, dtype):
    """Each input, the grad_output too, contiguous, transposed in memory, strided with an
    offset or expanded (stride 0), independently of the others: a backward that reads
    storage as if contiguous, or one tensor with another's strides, fails."""
    _holds(case, "layouts", device, dtype, form)


def test_magnitudes(case, form, device, dtype):
    """Each input scaled by 1e-3 and by 1e3: a derivation that overflows or underflows where
    autograd does not fails."""
    _holds(case, "magnitudes", device, dtype, form)


def test_non_finite_entries(case, form, device, dtype):
    """NaN, then inf, in one input at a time: wherever autograd's gradient is non-finite the
    manual one is too, and every finite entry agrees by the verdict."""
    _holds(case, "non-finite", device, dtype, form)


@settings(deadline=None)
@given(data=st.data())
def test_generated_shapes(case, form, device, dtype, data):
    """Sizes drawn across orders of magnitude and values across magnitudes, by hypothesis;
    a failure prints the example (and a blob that replays it). A right form that only loses
    digits at the drawn values passes with a warning (``handgrad.generated``) that prints
    neither: ``-W error::handgrad.LessAccurateWarning`` makes it a failure that does."""
    inputs = data.draw(case_inputs(case, device, dtype), label="inputs")
    generated_holds(case, form, device, dtype, inputs)


def test_finite_differences(case, device):
    """gradcheck in float64 on every Jacobian entry, small sizes, autograd's own derivative
    out of the loop (the backward is the manual gradient)."""
    assert opinions.gradcheck(case, device)


def test_finite_differences_at_the_case_sizes(case, device):
    """gradcheck's fast mode (one random projection of the Jacobian) at the case's sizes."""
    assert opinions.gradcheck(case, device, fast_mode=True)


def test_forward_mode_adjoint_identity(case, device):
    """<v, J u> by torch.func.jvp equals <J^T v, u> by the manual gradient (float64)."""
    opinions.adjoint_identity(case, device).check()


def test_hand_hessian(hessian_case, device):
    """The module's hand Hessian against torch.func.hessian (float64)."""
    opinions.hessian(hessian_case, device).check()


def test_training_steps(case, device, dtype):
    """SGD driven by the manual gradient, through torch's optimiser and by hand, against
    autograd's, parameter by parameter after every step."""
    opinions.training(case, device, dtype).check()


def test_generic_mutants_are_rejected(case, device, dtype, request):
    """A scaled, sign-flipped, dropped, permuted or wrongly reduced gradient, for every input
    in ``wrt``, fails the verdict: the check can fail for this case, at its own sizes (at
    the smallest ones a gradient can vanish: batch norm's ``d_x`` over two samples). On the
    same measured draw, the detection limit (``probes.rejected_from``), for the summary."""
    inputs = case.inputs(device, dtype)
    right = case.manual(inputs)
    measured = measure(case.reference, inputs)
    measured.judge(f"{case.name}: the right gradients", right).check()
    tried = 0
    for mutant in mutants.generic(case, dtype):
        verdict = measured.judge(mutant.label, mutant.apply(right, inputs))
        assert not verdict.passed, f"{case.name} [{dtype_name(dtype)}]: {mutant.label} passed"
        tried += 1
    assert tried >= 3 * len(case.wrt)
    request.node.user_properties.append((LIMIT, (case.name, device, dtype_name(dtype),
                                                 probes.rejected_from(measured, right))))


def test_bad_input_is_refused(case):
    """Each input of each public function spoiled one way at a time (integer dtype, a wrong
    shape, a list, mixed dtypes or devices, an empty axis, sizes that disagree) gets an
    error that names the argument, never a silently wrong gradient."""
    outcomes = list(probes.bad_input_outcomes(case))
    assert [(kind, where) for kind, where, ok in outcomes if not ok] == []
    assert len(outcomes) >= 5 * len(case.shapes)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_printed_examples(example, device, dtype):
    """Every number the source prints, from the forward and from both sides' gradients, to
    the digits printed (float32 and float64: what the sources ran in)."""
    case, ex = example
    probes.assert_example(case, ex, device, dtype)


def pytest_generate_tests(metafunc):
    """``library_case``: the declared cases that name their ``library_op``."""
    if "library_case" in metafunc.fixturenames:
        from handgrad.plugin import _cases_for

        named = [c for c in _cases_for(metafunc) if c.library_op is not None]
        metafunc.parametrize("library_case", named, ids=[c.name for c in named])


def test_forward_is_the_library_op(library_case, device, dtype):
    """The forward's output against the ``library_op`` it stands for, by the verdict (the
    truth: the op in float64): every other check differentiates the case's own forward, so a
    mistake made there and repeated in the backward (a constant mistyped in both) passes
    them all."""
    opinions.library_op_verdict(library_case, device, dtype).check()


def test_case_declares_what_it_checks(case):
    """``wrt`` names drawn inputs, ``output`` a forward value (non-scalar only with a
    grad_output), every form exists, every named step is a forward value, draws are seeded."""
    probes.assert_declaration(case)


def test_inputs_left_unchanged(case, device, dtype):
    """``forward`` and every backward form leave each input as they got it, bit for bit,
    layout too: on the default draw, every size at its least, the layouts, and every input
    extreme at once (``draws.extremes``). A backward that clamps or cleans its grad_output
    in place would hand autograd and the truth the inputs it spoiled."""
    assert opinions.inputs_unchanged(case, device, dtype) >= 2 * len(opinions.UNCHANGED_DRAWS)


# Function cases (``handgrad.FunctionCase``): each test runs on those that opt in ----------

def test_forward_matches_the_reference(function_case, device, dtype):
    """The op's output against its reference's by the verdict, on the default draw, every
    size 1, the layouts, the magnitudes and the non-finite entries."""
    opinions.all_hold(function_checks.forward_verdicts(function_case, device, dtype),
                      function_case)


def test_double_backward(double_backward_case, device, dtype):
    """Autograd through the op's own backward against through the reference's
    (``d/d(inputs, v) <J^T v, w>``), by the verdict: ``double_backward=True``."""
    function_checks.double_backward(double_backward_case, device, dtype).check()


def test_compiled(compiled_case, device, dtype):
    """The op under ``torch.compile``, its gradients judged again by the verdict
    (``compiled=True``); skipped with torch's reason where torch cannot compile here."""
    try:
        verdict = function_checks.compiled(compiled_case, device, dtype)
    except function_checks.Unavailable as why:
        pytest.skip(str(why))
    verdict.check()


def test_deterministic(repeats_case, device, dtype):
    """``repeats`` runs of the op's backward on one draw, equal bit for bit; otherwise the
    spread ``max |run_i - run_0|`` per gradient (``repeats=N``)."""
    function_checks.assert_deterministic(repeats_case, device, dtype)
