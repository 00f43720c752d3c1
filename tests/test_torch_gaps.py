""""not implemented for" skips a test only where torch lacks the op for autograd's reference
too (``handgrad.plugin.pytest_runtest_call``); a backward that raises it fails."""

QUICK = ["-p", "no:randomly", "-p", "no:cacheprovider", "-ra", "-k"]

RAISES = """
import torch

from cases import BY_NAME
from handgrad.mutants import planted

right = BY_NAME["square_mean"].module.gradients


def gradients(**inputs):
    if inputs["x"].dtype == torch.float16:
        raise RuntimeError("\\"foo\\" not implemented for 'Half'")
    return right(**inputs)


handgrad_cases = [planted(BY_NAME["square_mean"], gradients=gradients)]
"""

# det(A), whose LU torch 2.13 lacks in half precision on the CPU: a genuine gap.
DETERMINANT = """
import sys

import torch

from handgrad import Case

SHAPES = {"A": "N N"}


def forward(A):
    return {"det": torch.linalg.det(A)}


def gradients(A):
    return {"A": forward(A)["det"] * torch.linalg.inv(A).mT}  # d det(A) = det(A) A^-T


handgrad_cases = [Case(name="det", source="Jacobi's formula", formula="det(A)",
                       closed_form="det(A) A^-T", module=sys.modules[__name__],
                       output="det", wrt=("A",), dims={"N": 3})]
"""


def test_a_backward_that_raises_not_implemented_fails_with_its_error(pytester):
    pytester.makeconftest(RAISES)
    result = pytester.runpytest(*QUICK, "cpu and float16 and not bfloat16 and agrees_with_autograd")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*RuntimeError: \"foo\" not implemented for 'Half'*"])


def test_an_op_torch_lacks_for_the_reference_too_skips_with_the_reason(pytester):
    pytester.makeconftest(DETERMINANT)
    result = pytester.runpytest(*QUICK, "cpu and (float16 or float32) and not bfloat16 and agrees")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*torch lacks an op here, for autograd's reference too: "
                                 "\"lu_cpu\" not implemented for 'Half'*"])
