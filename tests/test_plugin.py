"""The pytest plugin on a project of its own: ``examples/swish``, copied into a fresh
directory, checked by handgrad's generic tests, then with a mistake planted."""

import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from handgrad import plugin

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "swish"
QUICK = ["-p", "no:randomly", "-p", "no:cacheprovider", "-k", "cpu and float32"]


def assert_passed(out: str, ident: str, checks) -> None:
    """Each ``test_<check>[<ident>]`` is reported PASSED in pytest's ``-v`` output."""
    for check in checks:
        assert re.search(rf"test_{check}\[{ident}\] PASSED", out), check


def project(pytester):
    for name in ("swish.py", "conftest.py"):
        shutil.copy(EXAMPLE / name, pytester.path / name)
    pytester.syspathinsert()
    return pytester.path / "swish.py"


def test_a_projects_own_case_gets_every_generic_check(pytester):
    project(pytester)
    result = pytester.runpytest(*QUICK, "-v", "-ra")
    result.assert_outcomes(failed=0, errors=0, passed=11, skipped=3)
    out = result.stdout.str()
    assert_passed(out, "swish-cpu-float32", (
        "agrees_with_autograd", "every_chain_rule_step", "every_size_one", "equal_sizes",
        "non_contiguous_layouts", "magnitudes", "non_finite_entries", "generated_shapes",
        "training_steps", "generic_mutants_are_rejected", "inputs_left_unchanged"))
    # no printed examples, no library_op declared: each said so
    assert re.search(r"got empty parameter set for \(?'?example", out)
    assert re.search(r"got empty parameter set for \(?'?library_case", out)
    assert "slow: run with --run-slow" in out  # the large sizes
    # the summary: the smallest error the verdict rejects, measured by the mutants' check
    assert "= handgrad detection limits =" in out
    assert re.search(r"^case +device +float32\nswish +cpu +\de-\d\d$", out, re.MULTILINE)
    slow = pytester.runpytest(*QUICK, "--run-slow", "-k", "cpu and float32 and large_sizes")
    slow.assert_outcomes(passed=1)


def test_a_planted_mistake_fails_with_the_gradient_named(pytester):
    source = project(pytester)
    text = source.read_text()
    assert "d_s * s * (1 - s)  #" in text
    source.write_text(text.replace("d_s * s * (1 - s)  #", "d_s * s  #"))  # lost (1 - s)
    result = pytester.runpytest(*QUICK[:-1], "cpu and float32 and agrees_with_autograd")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*swish [[]cpu, float32[]] gradients, default draw: "
                                 "1 gradient(s) fail*", "*d_x: manual's error*"])


def test_cuda_without_a_gpu_is_skipped_with_the_reason_or_one_error_on_request(pytester):
    """Without a GPU the cuda ids skip with the reason; with ``--require-cuda`` the run is
    one error line and a non-zero exit, the slow cuda ids counted too, and nothing runs."""
    if torch.cuda.is_available():
        pytest.skip("needs a machine without a GPU: with one, the cuda ids run")
    project(pytester)
    skipped = pytester.runpytest("-p", "no:randomly", "-k", "agrees and cuda", "-ra")
    skipped.assert_outcomes(skipped=4)
    skipped.stdout.fnmatch_lines(["*CUDA: no GPU on this machine*"])
    for selection in ("cuda", "large_sizes and cuda"):  # the slow ones fail, not skip
        required = pytester.runpytest("-p", "no:randomly", "-k", selection, "--require-cuda")
        assert required.ret == pytest.ExitCode.USAGE_ERROR
        errors = [line for line in required.errlines if line.strip()]
        assert len(errors) == 1
        assert re.fullmatch(
            re.escape(f"ERROR: --require-cuda: CUDA: no GPU on this machine (torch "
                      f"{torch.__version__}, built with CUDA {torch.version.cuda}), and ")
            + r"\d+ selected tests run on cuda", errors[0])
        assert "passed" not in required.stdout.str()
    cpu_only = pytester.runpytest("-p", "no:randomly", "-k", "agrees and cpu", "--require-cuda")
    cpu_only.assert_outcomes(passed=4)  # no cuda id selected: nothing to require


def test_a_slow_cuda_id_fails_at_setup_before_the_slow_skip():
    """Where the collection-time error does not apply (an xdist worker), a cuda id reaching
    setup without a GPU fails there, slow or not: the slow skip no longer wins."""
    if torch.cuda.is_available():
        pytest.skip("needs a machine without a GPU: with one, the cuda ids run")
    config = SimpleNamespace(getoption=lambda name: False)  # no --run-slow
    item = SimpleNamespace(callspec=SimpleNamespace(params={"device": "cuda"}), config=config,
                           get_closest_marker=lambda name: name == "slow" or None)
    # BaseException: a skip raises too, and is caught here, not reported as this test's
    with pytest.raises(BaseException, match=r"^--require-cuda: CUDA: no GPU") as raised:
        plugin.pytest_runtest_setup(item)
    assert raised.type is pytest.fail.Exception


def test_a_test_that_takes_a_case_with_none_declared_is_an_error(pytester):
    pytester.makepyfile(test_lonely="def test_x(case):\n    assert case\n")
    result = pytester.runpytest("-p", "no:randomly")
    result.stdout.fnmatch_lines(["*takes a case, but no conftest.py above it declares*"])
    assert result.ret != 0


def test_a_drawn_value_warning_shows_under_error_and_fails_on_request(pytester):
    """A ``LessAccurateWarning`` is reported, not failed, even in a project that makes every
    warning an error; ``-W error::handgrad.LessAccurateWarning`` makes it a failure."""
    # (in this process handgrad is imported already, which pytest warns it cannot rewrite)
    pytester.makeini("[pytest]\nfilterwarnings =\n    error\n"
                     "    ignore::pytest.PytestAssertRewriteWarning\n")
    pytester.makepyfile("import warnings\nimport handgrad\n\n\ndef test_drawn():\n"
                        "    warnings.warn(handgrad.LessAccurateWarning('at the drawn values'))\n")
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1, warnings=1)
    strict = pytester.runpytest("-p", "no:randomly", "-W", "error::handgrad.LessAccurateWarning")
    strict.assert_outcomes(failed=1)
