"""An opt-out justifies itself: a form declared ``full_precision_only`` still runs in half
precision, expected to fail there, and a test where it passes says the opt-out is stale."""

import shutil
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "swish"


def test_an_opt_out_of_a_form_that_passes_in_half_precision_is_stale(pytester):
    """``examples/swish`` declared ``full_precision_only`` for its one form, which is right
    in half precision: the bfloat16 and float16 checks run and fail, naming the stale
    opt-out; the float32 check passes as before."""
    shutil.copy(EXAMPLE / "swish.py", pytester.path / "swish.py")
    conftest = (EXAMPLE / "conftest.py").read_text()
    assert 'dims={"N": 8, "D": 5}),' in conftest
    pytester.makeconftest(conftest.replace('dims={"N": 8, "D": 5}),', 'dims={"N": 8, "D": 5}, '
                                           'full_precision_only=("gradients",)),'))
    pytester.syspathinsert()
    quick = ["-p", "no:randomly", "-p", "no:cacheprovider", "-rX", "-k",
             "agrees_with_autograd and cpu and (float16 or float32)"]
    result = pytester.runpytest(*quick)
    result.assert_outcomes(failed=2, passed=1)  # bfloat16 and float16; float32
    result.stdout.fnmatch_lines(["*XPASS(strict)*full_precision_only; if it passes here, "
                                 "the opt-out is stale*"])
