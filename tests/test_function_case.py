"""``FunctionCase``: an op with its own backward, checked against a reference, on
``examples/rms_norm`` and on ops written here to be wrong one way each."""

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest
import torch
from test_plugin import QUICK, assert_passed

from handgrad import FunctionCase, function_checks, opinions
from handgrad.function import skip_reason

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "rms_norm"
# The mistake .ci/run plants too: the backward reads grad_output's storage as if contiguous,
# as a kernel handed only its data pointer does. gradcheck's grad_outputs are contiguous.
MARKED = "g = grad_output  #"
PLANTED = "g = grad_output.as_strided(grad_output.shape, (grad_output.shape[1], 1))  #"


def example(planted: bool = False):
    """The example's module, with the layout mistake planted or not."""
    source = (EXAMPLE / "rms_norm.py").read_text()
    assert MARKED in source
    spec = importlib.util.spec_from_loader(f"rms_norm_{'planted' * planted}", loader=None)
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # torch.compile
    exec(compile(source.replace(MARKED, PLANTED) if planted else source, "rms_norm.py", "exec"),
         module.__dict__)
    return module


def rms_norm_case(module=None, **options) -> FunctionCase:
    module = module or example()
    return FunctionCase(name="rms_norm", function=module.RMSNorm.apply,
                        reference=module.rms_norm_reference, shapes={"x": "N D", "weight": "D"},
                        dims={"N": 8, "D": 16}, **options)


def test_the_example_gets_every_check_and_passes(pytester):
    for name in ("rms_norm.py", "conftest.py"):
        shutil.copy(EXAMPLE / name, pytester.path / name)
    pytester.syspathinsert()
    result = pytester.runpytest(*QUICK, "-v", "-ra")
    result.assert_outcomes(failed=0, errors=0, passed=13, skipped=4)
    out = result.stdout.str()
    assert_passed(out, "rms_norm-cpu-float32", (
        "agrees_with_autograd", "every_size_one", "equal_sizes", "non_contiguous_layouts",
        "magnitudes", "non_finite_entries", "generated_shapes", "training_steps",
        "inputs_left_unchanged", "generic_mutants_are_rejected",
        "forward_matches_the_reference", "double_backward", "deterministic"))
    assert "a function's backward names no chain-rule step" in out


def test_dtypes_not_declared_are_skipped_naming_the_declaration(pytester):
    for name in ("rms_norm.py", "conftest.py"):
        shutil.copy(EXAMPLE / name, pytester.path / name)
    conftest = pytester.path / "conftest.py"
    conftest.write_text(conftest.read_text().replace("repeats=5)", 'dtypes=("bfloat16",))'))
    pytester.syspathinsert()
    result = pytester.runpytest(*QUICK[:-1], "cpu and (agrees_with_autograd or finite_diff)",
                                "-ra")
    result.assert_outcomes(passed=1, skipped=5)
    result.stdout.fnmatch_lines([
        "*rms_norm declares dtypes=('bfloat16',): not float32",
        "*rms_norm declares dtypes=('bfloat16',): not float64 (this check runs in float64 only)"])


def test_gradcheck_passes_the_layout_mistake_that_handgrad_fails():
    planted = example(planted=True)
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(planted.RMSNorm.apply, (x, w))
    right = list(opinions.draw_verdicts(rms_norm_case(), "layouts", "cpu", torch.float32))
    assert all(v.passed for v in right)
    wrong = list(opinions.draw_verdicts(rms_norm_case(planted), "layouts", "cpu", torch.float32))
    failed = [v for v in wrong if not v.passed]
    assert failed, "handgrad passed a backward that reads grad_output as if contiguous"
    assert "d_x: manual's error" in failed[0].explain()
    default = list(opinions.draw_verdicts(rms_norm_case(planted), "default", "cpu", torch.float32))
    assert all(v.passed for v in default)  # the contiguous default draw cannot see it either


class SavedRstd(torch.autograd.Function):
    """RMSNorm whose backward uses the forward's ``rstd``: right, but it carries no graph,
    so the double backward misses ``rstd``'s dependence on ``x``."""

    @staticmethod
    def forward(ctx, x, weight):
        rstd = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
        ctx.save_for_backward(x, weight, rstd)
        return x * rstd * weight

    @staticmethod
    def backward(ctx, g):
        x, weight, rstd = ctx.saved_tensors
        x_hat, d_x_hat = x * rstd, g * weight
        d_x = rstd * (d_x_hat - x_hat * (d_x_hat * x_hat).mean(-1, keepdim=True))
        return d_x, (g * x_hat).sum(0)


def test_a_wrong_double_backward_fails_naming_it_where_the_first_order_passes():
    case = FunctionCase(
        name="saved_rstd", function=SavedRstd.apply, reference=example().rms_norm_reference,
        shapes={"x": "N D", "weight": "D"}, dims={"N": 8, "D": 16}, double_backward=True)
    case.verdict(case.inputs()).check()
    right = function_checks.double_backward(rms_norm_case(), "cpu", torch.float64)
    assert right.passed, right.explain()
    wrong = function_checks.double_backward(case, "cpu", torch.float64)
    assert not wrong.passed
    assert "d_x (double backward)" in wrong.explain()


def test_a_once_differentiable_backward_fails_the_double_backward():
    class Detached(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        @torch.autograd.function.once_differentiable
        def backward(ctx, g):
            return 2 * ctx.saved_tensors[0] * g

    case = FunctionCase(name="square", function=Detached.apply, reference=lambda x: x * x,
                        shapes={"x": "N"}, dims={"N": 5}, double_backward=True)
    case.verdict(case.inputs()).check()
    verdict = function_checks.double_backward(case, "cpu", torch.float64)
    assert [j.name for j in verdict.failures] == ["x (double backward)",
                                                  "grad_output (double backward)"]
    assert "manual 0," in verdict.explain()  # torch gave zeros, not an error


def scaling(name: str, backward, shape: str = "N D", **options) -> FunctionCase:
    """The op ``2 x``, with ``backward(g)`` for its backward."""
    class Scale(torch.autograd.Function):
        forward = staticmethod(lambda ctx, x: 2 * x)
        backward = staticmethod(lambda ctx, g: backward(g))

    return FunctionCase(name=name, function=Scale.apply, reference=lambda x: 2 * x,
                        shapes={"x": shape}, dims={"N": 3, "D": 4}, **options)


def test_a_backward_that_differs_run_to_run_reports_its_spread():
    runs = iter(range(100))  # what the order of atomic adds can do:
    case = scaling("jitter", lambda g: 2 * g + next(runs) * 1e-12, repeats=4)
    found = function_checks.repeat_spread(case, "cpu", torch.float64)
    assert len(found) == 1, found
    assert "d_x: 3 of 3 runs differ" in found[0]
    assert "spread max |run_i - run_0| = 3e-12" in found[0]
    assert function_checks.repeat_spread(rms_norm_case(repeats=3), "cpu", torch.float32) == []


def test_an_op_that_writes_into_its_inputs_cannot_reach_the_callers():
    def scribbles(g):
        out = 2 * g
        g.zero_()  # reuses the buffer, as kernels do
        return out

    case = scaling("scribbler", scribbles)
    inputs = case.inputs(dtype=torch.float32)
    before = {k: t.clone() for k, t in inputs.items()}
    case.verdict(inputs).check()
    assert all(inputs[k].equal(t) for k, t in before.items())


def test_an_op_whose_forward_writes_into_its_input_is_named():
    def clamps(x, weight):  # the op's own forward cleans its input in place
        return x.clamp_(-1e-4, 1e-4) * weight

    case = FunctionCase(name="clamps", function=clamps,
                        reference=lambda x, weight: x.clamp(-1e-4, 1e-4) * weight,
                        shapes={"x": "N D", "weight": "D"}, dims={"N": 3, "D": 4})
    with pytest.raises(AssertionError, match="forward changed its argument x in place"):
        opinions.inputs_unchanged(case, "cpu", torch.float64)


def test_bad_input_is_refused_or_as_the_reference_gives_it():
    assert all(ok for _, _, ok in function_checks.bad_input_outcomes(rms_norm_case()))

    def strict(x, weight):
        if x.dim() != 2:
            raise ValueError(f"x: expected (N, D), got {tuple(x.shape)}")
        return x * weight

    def loose(x, weight):  # broadcasts an (N, D, 1) x into (N, D, D) without a word
        return x * weight

    case = FunctionCase(name="loose", function=loose, reference=strict,
                        shapes={"x": "N D", "weight": "D"}, dims={"N": 3, "D": 4})
    wrong = [(kind, where) for kind, where, ok in function_checks.bad_input_outcomes(case)
             if not ok]
    assert ("a unit axis too many, e.g. (N, 1) for (N,)", "forward(x)") in wrong


def test_an_op_without_float64_is_judged_against_the_float64_reference():
    class Bf16Only(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            if x.dtype != torch.bfloat16:
                raise TypeError(f"x: a bfloat16 kernel, got {x.dtype}")
            ctx.save_for_backward(x)
            return torch.sin(x)

        @staticmethod
        def backward(ctx, g):
            return g * torch.cos(ctx.saved_tensors[0])

    case = FunctionCase(name="sin_bf16", function=Bf16Only.apply, reference=torch.sin,
                        shapes={"x": "N D"}, dims={"N": 8, "D": 5}, dtypes=("bfloat16",))
    assert case.inputs()["x"].dtype == torch.bfloat16
    verdict = case.verdict(case.inputs("cpu", torch.bfloat16)).check()
    assert verdict.judgements[0].err_autograd > 0  # a bfloat16 baseline, a float64 truth
    with pytest.raises(ValueError, match=r"^dtypes: sin_bf16 declares \('bfloat16',\)"):
        case.manual(case.inputs("cpu", torch.float64))
    params = {"case": case, "device": "cpu"}
    assert "not float64 (this check runs in float64 only)" in skip_reason(
        "test_finite_differences", params)
    assert "not float16" in skip_reason("test_magnitudes", {**params, "dtype": torch.float16})
    assert skip_reason("test_magnitudes", {**params, "dtype": torch.bfloat16}) is None


def test_the_output_shape_is_found_or_asked_for():
    assert rms_norm_case().shapes["grad_output"] == "N D"
    scalar = FunctionCase(name="sum_sq", function=lambda x: (x * x).sum(),
                          reference=lambda x: x.pow(2).sum(), shapes={"x": "N D"},
                          dims={"N": 3, "D": 4})
    assert scalar.shapes["grad_output"] == ""
    scalar.verdict(scalar.inputs()).check()
    def first_three(x):
        return x[:, :3]

    with pytest.raises(ValueError, match=r"^output_shape: "):  # 3 is D at the first sizes
        FunctionCase(name="first_three", function=first_three, reference=first_three,
                     shapes={"x": "N D"}, dims={"N": 3, "D": 4})
    given = FunctionCase(name="first_three", function=first_three, reference=first_three,
                         shapes={"x": "N D"}, dims={"N": 3, "D": 4}, output_shape="N 3")
    given.verdict(given.inputs()).check()


@pytest.mark.slow
def test_the_op_under_torch_compile_is_judged_again():
    function_checks.compiled(rms_norm_case(compiled=True), "cpu", torch.float32).check()

    def differs_under_compile(x):  # what a wrong graph from torch.compile looks like
        return x * 3 if torch.compiler.is_compiling() else x * 2

    case = FunctionCase(name="compiled_otherwise", function=differs_under_compile,
                        reference=lambda x: x * 2, shapes={"x": "N"}, dims={"N": 4})
    case.verdict(case.inputs("cpu", torch.float32)).check()
    verdict = function_checks.compiled(case, "cpu", torch.float32)
    assert "d_x: manual's error" in verdict.explain()


@torch.library.custom_op("handgrad_tests::cube", mutates_args=())
def cube(x: torch.Tensor) -> torch.Tensor:
    return x * x * x


@cube.register_fake
def _(x):
    return torch.empty_like(x)


def _save_x(ctx, inputs, output):
    ctx.save_for_backward(inputs[0])


cube.register_autograd(lambda ctx, g: 3 * ctx.saved_tensors[0] ** 2 * g, setup_context=_save_x)


def test_a_custom_op_with_a_registered_backward_is_a_function_case():
    case = FunctionCase(name="cube", function=cube, reference=lambda x: x**3,
                        shapes={"x": "N D"}, dims={"N": 4, "D": 3})
    assert case.closed_form == "handgrad_tests::cube's own backward"
    for dtype in (torch.float64, torch.bfloat16):
        for draw in ("default", "layouts", "non-finite"):
            for verdict in opinions.draw_verdicts(case, draw, "cpu", dtype):
                verdict.check()
    assert opinions.gradcheck(case, "cpu")
