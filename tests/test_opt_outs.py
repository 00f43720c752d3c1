"""An opt-out is not silent: a form declared ``full_precision_only`` still runs in half
precision, expected to fail there, and a test where it passes says so (XPASS)."""

import shutil
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "swish"


def test_an_opted_out_form_runs_in_half_precision_and_shows_where_it_passes(pytester):
    """``examples/swish`` declared ``full_precision_only`` for its one form, which is right
    in half precision: the bfloat16 and float16 checks run, and pass as XPASS with the
    opt-out named; the float32 check passes as before."""
    shutil.copy(EXAMPLE / "swish.py", pytester.path / "swish.py")
    conftest = (EXAMPLE / "conftest.py").read_text()
    assert 'dims={"N": 8, "D": 5}),' in conftest
    pytester.makeconftest(conftest.replace('dims={"N": 8, "D": 5}),', 'dims={"N": 8, "D": 5}, '
                                           'full_precision_only=("gradients",)),'))
    pytester.syspathinsert()
    quick = ["-p", "no:randomly", "-p", "no:cacheprovider", "-rX", "-k",
             "agrees_with_autograd and cpu and (float16 or float32)"]
    result = pytester.runpytest(*quick)
    result.assert_outcomes(xpassed=2, passed=1)  # bfloat16 and float16; float32
    result.stdout.fnmatch_lines(["*XPASS*swish: gradients is declared full_precision_only*"])
