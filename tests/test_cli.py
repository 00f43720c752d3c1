"""``python -m cases``: the verification table and its exit codes, one-line errors, the
walkthroughs, and the README's generated tables."""

import re
import runpy
import sys
from pathlib import Path

import pytest
import torch

from cases import BY_NAME, CASES
from handgrad import readme
from handgrad.cli import main
from handgrad.mutants import planted
from handgrad.probes import assert_printed
from handgrad.report import verify

README = Path(__file__).resolve().parents[1] / "README.md"
QUICK = ["--device", "cpu", "--dtype", "float32", "--no-progress"]


def test_verifies_and_exits_0(capsys):
    assert main(CASES, ["square_mean", "vector_backward", *QUICK]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^square_mean +cpu +float32 +gradients, layouts +\d\.\d\dx +ok$", out,
                     re.MULTILINE)
    assert "FAILS" not in out
    assert max(len(line) for line in out.splitlines()) <= 100
    assert re.search(r"^(\d+) of \1 checks hold\.$", out, re.MULTILINE)


def test_exits_1_naming_the_check_and_gradient_that_fail(capsys):
    sgd = BY_NAME["sgd_linear_regression"]
    right = sgd.module.gradients

    def wrong(**inputs):
        return {**right(**inputs), "b": right(**inputs)["b"] * 1.01}

    assert main([planted(sgd, gradients=wrong)], ["--failures-only", *QUICK]) == 1
    out = capsys.readouterr().out
    assert "sgd_linear_regression  cpu     float32  gradients, default" in out
    assert "d_b: manual's error" in out
    assert "checks hold; " in out
    assert "FAIL:" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["no_such_case"], "unknown case 'no_such_case' (choose from linear_xw, "),
    (["--update-readme", "README.md", "square_mean"], "--update-readme regenerates every table"),
    (["--update-readme", "no/such/README.md"], "--update-readme: no file no/such/README.md"),
])
def test_errors_are_one_line_with_status_2(capsys, argv, message):
    assert main(CASES, argv, prog="python -m cases") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"python -m cases: error: {message}")
    assert err.count("\n") == 1


def test_a_readme_without_markers_is_refused(tmp_path, capsys):
    bare = tmp_path / "README.md"
    bare.write_text("# no tables here\n")
    assert main(CASES, ["--update-readme", str(bare)]) == 2
    assert "no '<!-- generated: cases -->'" in capsys.readouterr().err
    assert bare.read_text() == "# no tables here\n"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where no GPU is")
def test_asking_for_cuda_without_a_gpu_fails_with_the_reason(capsys):
    assert main(CASES, ["--device", "cuda"]) == 2
    assert "no CUDA device here" in capsys.readouterr().err


def test_help_names_the_program_and_is_complete(monkeypatch, capsys):
    """``python -m cases --help``, run as ``-m`` runs it (in this process: a fresh one
    would spend 2 s importing torch)."""
    monkeypatch.setattr(sys, "argv", ["cases", "--help"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module("cases", run_name="__main__", alter_sys=True)
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m cases")
    assert "--update-readme README" in out
    assert "cases: linear_xw, " in out


def test_sgd_walkthrough_replays_the_articles_steps(capsys):
    assert main(CASES, ["sgd_linear_regression", "--walkthrough"]) == 0
    tokens = capsys.readouterr().out.replace("|", " ").split()
    for number in ("1.8", "1.96", "4", "0.16", "0.0064", "-8", "-1.6", "-0.32",
                   "-150.28", "-24.08", "173.39", "-0.19459", "0.88857"):
        assert number in tokens, number


def test_walkthrough_prints_the_code_line_not_the_docstring(capsys):
    assert main(CASES, ["linear_xw", "--walkthrough"]) == 0
    out = capsys.readouterr().out
    assert "    d_w = X.T @ d_y_hat  # (D, 1)  step 4: X @ w\n" in out
    assert out.count("d_w = X^T") == 1  # the closed form, once, in the header


@pytest.mark.parametrize("with_examples", [c for c in CASES if c.examples], ids=lambda c: c.name)
def test_walkthrough_shows_every_printed_value(with_examples, capsys):
    """Each value the source printed, read back from the walkthrough's text, agrees with
    the printed number to its last digit (the manual side's line, ``by hand``)."""
    case = with_examples
    assert main(CASES, [case.name, "--walkthrough"]) == 0
    out = capsys.readouterr().out
    for example in case.examples:
        part = out.split(f"Example: {example.label}\n")[1].split("Example: ")[0]
        for key, printed in example.expected.items():
            pattern = (rf"d_{key[2:]}(?: =|,).*\n +by hand +(.*)" if key.startswith("d_")
                       else rf"^ +{key} +(.*)$")
            shown = re.search(pattern, part, re.MULTILINE).group(1)
            values = re.findall(r"-?\d+\.?\d*(?:e[-+]\d+)?", shown.split(": ")[-1])
            assert_printed(torch.tensor([float(v) for v in values]), printed,
                           f"{example.label} {key}")


@pytest.mark.slow
def test_readme_tables_are_current():
    """The facts agree exactly; the measurements hold the rule, in the README's rows and
    columns (``readme.measured_cells_hold``). How far this CPU's numbers land from the
    README's, its rounding decides: that is not asserted."""
    printed = readme.blocks(README.read_text())
    fresh = readme.generate(CASES, verify(CASES, ["cpu"]))
    for name, text in fresh.items():
        if name in readme.MEASURED:
            broken = readme.measured_cells_hold(printed[name], text)
            assert not broken, f"{name}: {broken}"
        else:
            assert printed[name] == text, "python -m cases --update-readme README.md"


def test_measured_cells_are_held_to_the_rule_not_to_the_readme():
    """Another CPU's numbers within the rule pass, however far from the README's (a ratio
    from 1.12 to 2.20 in float64); a ratio past K (2; 6 in float64), a limit past
    ``limit_bound``, another row or a check that fails does not."""
    head = "| case | float64 | float32 |\n| --- | ---: | ---: |\n"
    a = head + "| `x` | ≤ 1e-13 | 1e-06 |\n| `y` | 1.12 | 1.20 |\n\n9 of 9 checks hold."
    moved = head + "| `x` | ≤ 1e-13 | 2e-06 |\n| `y` | 2.20 | 1.95 |\n\n9 of 9 checks hold."
    assert readme.measured_cells_hold(a, moved) == []
    broken = head + "| `x` | 1e-11 | 1e-05 |\n| `z` | 6.10 | 2.10 |\n\n8 of 9 checks hold."
    assert readme.measured_cells_hold(a, broken) == [
        "`x` float64 (measured): a limit of 1e-11, past 1e-13",
        "`x` float32 (measured): a limit of 1e-05, past 2e-06",
        "'| `y` | 1.12 | 1.20 |' is now '| `z` | 6.10 | 2.10 |'",
        "'9 of 9 checks hold.' is now '8 of 9 checks hold.'", "1 of 9 checks fail"]
    past = head + "| `x` | ≤ 1e-13 | 1e-06 |\n| `y` | 6.10 | 2.10 |\n\n9 of 9 checks hold."
    assert readme.measured_cells_hold(past, past) == [
        "`y` float64 (the README's): a ratio of 6.10, past the rule's 6",
        "`y` float32 (the README's): a ratio of 2.10, past the rule's 2",
        "`y` float64 (measured): a ratio of 6.10, past the rule's 6",
        "`y` float32 (measured): a ratio of 2.10, past the rule's 2"]


def test_the_readme_quotes_ids_and_rules_that_exist():
    """Every test id the README quotes is one pytest collects; its rules are the code's."""
    from handgrad import DTYPES, checks
    from handgrad.verdict import FLOOR_ULPS, K_FLOAT64, K

    text = README.read_text()
    ids = re.findall(r"conftest\.py::(test_\w+)\[(\w+)-(\w+)-(\w+)\]", text)
    assert ids
    for test, case, device, dtype in ids:
        assert hasattr(checks, test), test
        assert case in BY_NAME, case
        assert device in ("cpu", "cuda"), device
        assert dtype in DTYPES, dtype
    assert (K, K_FLOAT64, FLOOR_ULPS) == (2, 6, 4)
    assert "at most `K = 2` times autograd's own" in text
    assert "by six times that" in text
    assert "four units in the last place" in text
