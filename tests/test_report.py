"""``python -m cases``: the verification table, its exit code, the walkthroughs and the
README's generated case table."""

from pathlib import Path

import pytest

from cases import CASES
from cases.__main__ import main
from cases.case import decimals
from cases.report import README_TABLES, readme_block, verify


def test_verifies_every_case_and_exits_0(capsys):
    assert main(["--device", "cpu"]) == 0
    out = capsys.readouterr().out
    for case in CASES:
        assert f"\n{case.name} " in out
    assert "DIFFERS" not in out
    assert "finite differences" in out


def test_exits_1_naming_the_gradient_that_is_wrong(capsys, monkeypatch):
    case = next(c for c in CASES if c.name == "mlp_relu_mse")
    right = case.module.gradients

    def wrong(**inputs):
        return {**right(**inputs), "b1": right(**inputs)["b1"] * 1.01}

    monkeypatch.setattr(case.module, "gradients", wrong)
    assert main(["mlp_relu_mse", "--dtype", "float64", "--device", "cpu"]) == 1
    out = capsys.readouterr().out
    assert "DIFFERS" in out
    assert "checks agree; 2 DIFFER." in out
    rows = verify([case], ["cpu"], ["float64"])
    assert [(r.check, r.parameter) for r in rows if r.verdict != "ok"] == [
        ("autograd", "b1"), ("finite differences", "x, w1, b1, w2, b2")]


def test_filters_and_unknown_names(capsys):
    assert main(["--case", "square_mean", "--dtype", "float32", "--device", "cpu"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("square")]
    assert len(lines) == 1
    assert "float32" in lines[0]
    with pytest.raises(SystemExit) as exit_:
        main(["no_such_case"])
    assert exit_.value.code == 2
    assert "unknown case 'no_such_case'" in capsys.readouterr().err


def test_sgd_walkthrough_prints_the_articles_steps(capsys):
    assert main(["sgd_linear_regression", "--walkthrough"]) == 0
    tokens = capsys.readouterr().out.replace("|", " ").split()
    for number in ("1.8", "1.96", "4", "0.16", "0.0064", "-8", "-1.6", "-0.32",
                   "-150.28", "-24.08", "173.39", "-0.19459", "0.88857"):
        assert number in tokens, number


@pytest.mark.parametrize("with_examples", [c for c in CASES if c.examples], ids=lambda c: c.name)
def test_walkthrough_prints_each_printed_value(with_examples, capsys):
    """Every value an article printed shows in the walkthrough, to the article's digits."""
    case = with_examples
    assert main([case.name, "--walkthrough"]) == 0
    out = capsys.readouterr().out
    for example in case.examples:
        inputs = example.tensors()
        values = case.forward(inputs) | {f"d_{k}": g for k, g in case.manual(inputs).items()}
        for key, printed in example.expected.items():
            for v in values[key].flatten().tolist():
                assert f"{v:.{decimals(printed)}f}" in out, (example.label, key, v)


@pytest.mark.parametrize("table", README_TABLES)
def test_readme_tables_are_generated(table):
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert readme_block(table, CASES) in readme, "python -m cases --update-readme README.md"


def test_sgd_loss_curve_is_drawn(tmp_path):
    pytest.importorskip("matplotlib", reason="the figure needs the plot extra")
    from cases.plots import main as plot

    out = tmp_path / "curve.png"
    plot(["--out", str(out)])
    assert out.read_bytes().startswith(b"\x89PNG")
