"""A user's own gradient, from the outside: ``handgrad.verify`` and ``handgrad.check``,
what a wrong or broken gradient gets (a failing row, never a traceback), and a forward
pinned to the library op it stands for."""

import dataclasses
import importlib.util
import re
from pathlib import Path

import pytest
import torch

import handgrad
from cases import BY_NAME
from handgrad import checks, opinions
from handgrad.cli import main
from handgrad.judgement import VerdictError
from handgrad.mutants import planted

ROOT = Path(__file__).resolve().parents[1]
SWISH = ROOT / "examples" / "swish" / "swish.py"
QUICK = ["-p", "no:randomly", "-p", "no:cacheprovider", "-k", "cpu and float32"]


def readme_snippets() -> dict[str, str]:
    """Each fenced block the README marks ``<!-- snippet: FILE -->``, by file name."""
    found = re.findall(r"^<!-- snippet: (\S+) -->\n```python\n(.*?)^```$",
                       (ROOT / "README.md").read_text(), re.MULTILINE | re.DOTALL)
    return dict(found)


def readme_project(pytester, **replaced: tuple[str, str]) -> None:
    """The README's user project, written out as it stands there (``replaced``: a file's
    (old, new) text, the old asserted present)."""
    for name, text in readme_snippets().items():
        old, new = replaced.get(name.removesuffix(".py"), ("", ""))
        assert old in text
        pytester.path.joinpath(name).write_text(text.replace(old, new) if old else text)
    pytester.syspathinsert()


def load(path: Path, name: str):
    """A fresh copy of a module from its file, free to be changed by one test."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def swish_case(**replaced) -> handgrad.Case:
    case = handgrad.Case(name="swish", source="examples/swish", formula="y = x sigmoid(x)",
                         closed_form="d_x = v (s + x s (1 - s))", module=load(SWISH, "swish"),
                         output="y", wrt=("x",), grad_output="v", dims={"N": 8, "D": 5})
    return planted(case, **replaced) if replaced else case


def shape_mistake(x, v):  # (N, D) @ (N, D): the matmul that should have been a product
    return {"x": v @ torch.sigmoid(x)}


def wrong_value(x, v):  # the (1 - s) of sigmoid's derivative lost
    s = torch.sigmoid(x)
    return {"x": v * (s + x * s)}


def not_a_dict(x, v):
    return None


def test_the_package_exports_what_the_readme_uses():
    assert handgrad.verify is handgrad.report.verify
    assert handgrad.check is handgrad.shapes.check
    assert isinstance(handgrad.verify(swish_case(), ["cpu"], ["float64"]), handgrad.Report)


@pytest.mark.parametrize(("gradients", "raised", "message"), [
    (shape_mistake, "RuntimeError", "RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
    (wrong_value, "GradcheckError", "d_x: manual differs from autograd by"),
    (not_a_dict, "TypeError", "TypeError: 'NoneType' object is not iterable"),
], ids=["shape", "value", "type"])
def test_a_wrong_or_broken_gradient_gets_failing_rows_not_a_traceback(gradients, raised,
                                                                      message, capsys):
    """Each mistake raises in some check (``raised``, the exception's type): that check is a
    FAIL row with the message, and the report, and ``python -m cases NAME``, go on."""
    case = swish_case(gradients=gradients)
    report = handgrad.verify(case, ["cpu"], ["float64"])
    assert not report.passed
    assert any(row.detail.startswith(f"{raised}: ") for row in report.failures)
    assert message in str(report)
    assert "Traceback" not in str(report)
    if raised == "GradcheckError":  # finite differences: gradcheck's own exception, a row
        row = next(r for r in report.rows if r.check == "finite differences")
        assert not row.passed
        assert row.detail.startswith("GradcheckError: Jacobian mismatch")
    assert main([case], ["--dtype", "float64", "--device", "cpu", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"^swish +cpu +float64 +gradients, default +.* FAILS$", out, re.MULTILINE)
    assert message in out


def test_the_report_gives_detection_limits_per_dtype():
    report = handgrad.verify(swish_case(), ["cpu"], ["float64", "float32"])
    assert report.passed
    limits = report.limits
    assert set(limits) == {("swish", "cpu", "float64"), ("swish", "cpu", "float32")}
    # A wrong gradient's error does not shrink with precision, a right one's does: float64
    # catches a smaller error than float32, and both well under 1 (what the ladder tops at).
    assert limits["swish", "cpu", "float64"] < limits["swish", "cpu", "float32"] < 1
    assert re.search(r"^swish +cpu +(≤ )?\de-\d\d +\de-\d\d$", str(report), re.MULTILINE)


def test_check_refuses_bad_input_by_name():
    shapes = {"x": "N D", "v": "N D"}
    x = torch.zeros(3, 2)
    assert handgrad.check(shapes, x=x, v=x) == {"N": 3, "D": 2}
    with pytest.raises(ValueError, match=r"^x: expected a torch.Tensor of shape \(N, D\), "
                                         r"got list$"):
        handgrad.check(shapes, x=x.tolist())
    with pytest.raises(ValueError, match=r"^v: expected shape \(N, D\) with D=2 as in x, "
                                         r"got \(3, 3\)$"):
        handgrad.check(shapes, x=x, v=torch.zeros(3, 3))


def test_the_example_refuses_a_list_by_name_with_a_value_error():
    swish = load(SWISH, "swish")
    with pytest.raises(ValueError, match=r"^x: expected a torch.Tensor"):
        swish.forward([[1.0, 2.0]])


def test_a_forward_mistake_repeated_in_the_backward_fails_only_the_library_op_check():
    """GELU's 0.044715 written 0.04471 in the forward and the backward alike: autograd of
    that forward agrees with the backward, so only the library op can tell. The forwards
    differ by about 1e-6 relative, which float64 and float32 resolve (in half precision it
    is below rounding)."""
    gelu = BY_NAME["gelu"]
    module = load(Path(gelu.module.__file__), "gelu_mistyped")
    module.K = 0.04471
    wrong = dataclasses.replace(gelu, module=module)
    for dtype in (torch.float64, torch.float32):
        inputs = wrong.inputs("cpu", dtype)
        assert wrong.verdict(inputs).passed  # the backward agrees with its own forward
        with pytest.raises(VerdictError, match=r"forward against its library_op: 1 gradient"):
            checks.test_forward_is_the_library_op(wrong, "cpu", dtype)
    assert opinions.gradcheck(wrong, "cpu")
    checks.test_forward_is_the_library_op(gelu, "cpu", torch.float32)  # the right one holds
    report = handgrad.verify(wrong, ["cpu"], ["float32"])  # of every check, that one alone
    assert [r.check for r in report.failures] == ["forward against library_op"]


def test_the_readmes_module_case_passes_as_written(pytester):
    assert set(readme_snippets()) == {"swish.py", "conftest.py"}
    readme_project(pytester)
    result = pytester.runpytest(*QUICK)
    result.assert_outcomes(failed=0, errors=0, passed=11, skipped=3)


def test_gradients_keyed_d_x_are_told_the_convention(pytester):
    """The README's snippet with its gradients keyed ``d_s``, ``d_x``: the failure names the
    expected key, in the convention, and says to drop the prefix."""
    readme_project(pytester, swish=('{"s": d_s, "x":', '{"d_s": d_s, "d_x":'))
    result = pytester.runpytest(*QUICK[:-1], "cpu and float32 and agrees_with_autograd")
    result.assert_outcomes(failed=1)
    assert ("d_x: missing: expected the key 'x' (each gradient under the bare name of what it "
            "differentiates: {'x': d_x}); manual gives ['d_s', 'd_x']; drop the d_ prefix of "
            "['d_s', 'd_x']") in result.stdout.str()
    declared = pytester.runpytest(*QUICK[:-1], "declares_what_it_checks")
    declared.assert_outcomes(failed=1)
    assert ("steps ['d_s', 'd_x'] name no forward value: nothing checks them; keys are bare "
            "names ({'x': d_x}): drop the d_ prefix") in declared.stdout.str()
