"""The pytest plugin on a project of its own: ``examples/swish``, copied into a fresh
directory, checked by handgrad's generic tests, then with a mistake planted."""

import re
import shutil
from pathlib import Path

import pytest
import torch

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "swish"
QUICK = ["-p", "no:randomly", "-p", "no:cacheprovider", "-k", "cpu and float32"]


def project(pytester):
    for name in ("swish.py", "conftest.py"):
        shutil.copy(EXAMPLE / name, pytester.path / name)
    pytester.syspathinsert()
    return pytester.path / "swish.py"


def test_a_projects_own_case_gets_every_generic_check(pytester):
    project(pytester)
    result = pytester.runpytest(*QUICK, "-v", "-ra")
    result.assert_outcomes(failed=0, errors=0, passed=10, skipped=2)
    out = result.stdout.str()
    for check in ("agrees_with_autograd", "every_chain_rule_step", "every_size_one",
                  "non_contiguous_layouts", "magnitudes",
                  "non_finite_entries", "generated_shapes", "training_steps",
                  "generic_mutants_are_rejected", "inputs_left_unchanged"):
        assert re.search(rf"conftest.py::test_{check}\[swish-cpu-float32\] PASSED", out), check
    assert "got empty parameter set" in out  # no printed examples declared: said so
    assert "slow: run with --run-slow" in out  # the large sizes
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


def test_cuda_without_a_gpu_is_skipped_with_the_reason_or_failed_on_request(pytester):
    if torch.cuda.is_available():
        pytest.skip("needs a machine without a GPU: with one, the cuda ids run")
    project(pytester)
    skipped = pytester.runpytest("-p", "no:randomly", "-k", "agrees and cuda", "-ra")
    skipped.assert_outcomes(skipped=4)
    skipped.stdout.fnmatch_lines(["*CUDA: no GPU on this machine*"])
    required = pytester.runpytest("-p", "no:randomly", "-k", "agrees and cuda", "--require-cuda")
    required.assert_outcomes(errors=4)
    required.stdout.fnmatch_lines(["*--require-cuda: CUDA: no GPU on this machine*"])


def test_a_test_that_takes_a_case_with_none_declared_is_an_error(pytester):
    pytester.makepyfile(test_lonely="def test_x(case):\n    assert case\n")
    result = pytester.runpytest("-p", "no:randomly")
    result.stdout.fnmatch_lines(["*takes a case, but no conftest.py above it declares*"])
    assert result.ret != 0
