"""An opt-out covers half precision's range, never a mistake: a form declared
``full_precision_only`` runs every check in half precision too, and a failure there is
excused (XFAIL, or an excused row in ``verify``) only where each failing gradient overflows
where autograd's does not, and is right in float64."""

import shutil
from pathlib import Path

import pytest
import torch

from cases import BY_NAME
from handgrad import opinions
from handgrad.judgement import Excused, VerdictError
from handgrad.mutants import planted

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "swish"
MLP = BY_NAME["mlp_relu_mse"]
BROADCAST = "gradients_broadcast"


def _overflowing_draw(dtype):
    """The default draw with ``w1`` times 1e3: the broadcast form's float16 partial sums of
    ``d_x`` overflow where a matmul's float32 accumulator does not."""
    inputs = MLP.inputs("cpu", dtype)
    return [MLP.verdict({**inputs, "w1": inputs["w1"] * 1e3}, BROADCAST, draw="w1 times 1e3")]


def test_the_mlps_opt_out_holds_where_it_is_used():
    """The reason the case states beside ``full_precision_only`` holds: in float16 the
    broadcast form fails this draw, by overflowing, and is right in float64."""
    verdicts = _overflowing_draw(torch.float16)
    assert not verdicts[0].passed
    assert verdicts[0].only_out_of_range
    with pytest.raises(Excused, match="overflowing where autograd does not, right in float64"):
        opinions.all_hold(verdicts, MLP, BROADCAST, torch.float16)


def test_a_form_not_opted_out_is_not_excused():
    """The same failure of a form without the opt-out, or in float32, is a failure."""
    verdicts = _overflowing_draw(torch.float16)
    with pytest.raises(VerdictError, match="less accurate than autograd in float16"):
        opinions.all_hold(verdicts, MLP, "gradients", torch.float16)
    assert not opinions.excused(MLP, BROADCAST, torch.float32, verdicts)


def test_an_opted_out_form_wrong_in_bfloat16_only_fails():
    """A broadcast form 50 % off in bfloat16 alone is right when run again in float64, so the
    diagnosis calls it less accurate; but its error is finite, which the opt-out does not
    cover: it fails."""
    right = getattr(MLP.module, BROADCAST)

    def half_off(**inputs):
        scale = 1.5 if inputs["x"].dtype == torch.bfloat16 else 1.0
        return {k: g * scale for k, g in right(**inputs).items()}

    wrong = planted(MLP, **{BROADCAST: half_off})
    verdicts = list(opinions.draw_verdicts(wrong, "default", "cpu", torch.bfloat16, BROADCAST))
    with pytest.raises(VerdictError, match="fail"):
        opinions.all_hold(verdicts, wrong, BROADCAST, torch.bfloat16)
    opinions.all_hold(opinions.draw_verdicts(wrong, "default", "cpu", torch.float16, BROADCAST),
                      wrong, BROADCAST, torch.float16)  # elsewhere it is right


def test_an_excused_check_is_reported_xfail_with_the_reason(pytester):
    """The plugin turns ``Excused`` into XFAIL, its first line the reason in the summary."""
    pytester.makepyfile(test_covered="""
        from handgrad.judgement import Excused

        def test_covered():
            raise Excused("swish: gradients is declared full_precision_only; in float16 "
                          "1 of 1 input sets fail\\nthe verdict's lines")
        """)
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", "-rx")
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(["*XFAIL*swish: gradients is declared full_precision_only*"])


def test_an_opt_out_where_the_form_is_right_changes_nothing(pytester):
    """``examples/swish`` with its one form declared ``full_precision_only``: right in half
    precision, its half-precision checks pass as any other, nothing excused."""
    shutil.copy(EXAMPLE / "swish.py", pytester.path / "swish.py")
    conftest = (EXAMPLE / "conftest.py").read_text()
    assert 'dims={"N": 8, "D": 5}),' in conftest
    pytester.makeconftest(conftest.replace('dims={"N": 8, "D": 5}),', 'dims={"N": 8, "D": 5}, '
                                           'full_precision_only=("gradients",)),'))
    pytester.syspathinsert()
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", "-k",
                                "agrees_with_autograd and cpu and (float16 or float32)")
    result.assert_outcomes(passed=3)  # bfloat16, float16 and float32
