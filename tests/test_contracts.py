"""The project's contracts: the registry is complete, one name is used everywhere, and
``manual_grads`` is algebra, not autograd."""

import ast
import dataclasses
import importlib
import pkgutil
from pathlib import Path

import pytest

import cases
import manual_grads
from cases import CASES, registry

NOT_CASES = {"case", "limits", "report", "plots", "__main__"}  # modules of cases/ that hold no case


def test_every_case_module_is_registered():
    modules = {m.name for m in pkgutil.iter_modules(cases.__path__)} - NOT_CASES
    assert modules == {case.name for case in CASES}


def test_one_name_everywhere(case):
    assert importlib.import_module(f"cases.{case.name}").CASE is case
    assert case.module.__name__ == f"manual_grads.{case.name}"


def test_a_duplicate_name_is_rejected():
    twin = dataclasses.replace(CASES[0])
    with pytest.raises(ValueError, match=f"{CASES[0].name!r} is registered twice"):
        registry(*CASES, twin)


def test_case_declares_what_it_checks(case):
    inputs = case.inputs()
    assert set(case.wrt) <= set(inputs), "wrt names an input the case does not draw"
    assert case.output in case.forward(inputs)
    assert case.forward(inputs)[case.output].dim() == 0 or case.grad_output in inputs, (
        "a non-scalar output needs a grad_output")
    for form in ("gradients", *case.variants):
        assert callable(getattr(case.module, form))
    assert case.inputs()[case.wrt[0]].equal(inputs[case.wrt[0]]), "inputs are not seeded"


FORBIDDEN_NAMES = {"backward", "autograd", "func", "requires_grad", "requires_grad_", "grad"}


def autograd_uses(path: Path) -> list[str]:
    """Attribute accesses, imports and names in a file that reach for autograd."""
    hits = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_NAMES:
            hits.append(f"{path.name}:{node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module and (
                "autograd" in node.module or node.module.startswith("torch.func")):
            hits.append(f"{path.name}:{node.lineno}: from {node.module}")
        elif isinstance(node, ast.Import) and any(
                "autograd" in a.name or a.name.startswith("torch.func") for a in node.names):
            hits.append(f"{path.name}:{node.lineno}: import")
        elif isinstance(node, ast.keyword) and node.arg == "requires_grad":
            hits.append(f"{path.name}:{node.lineno}: requires_grad=")
    return hits


def test_manual_grads_uses_no_autograd():
    files = sorted(Path(manual_grads.__file__).parent.glob("*.py"))
    assert len(files) > len(CASES)
    assert [hit for f in files for hit in autograd_uses(f)] == []


def test_the_autograd_scan_finds_autograd(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text(
        "import torch\nfrom torch.autograd import grad\nimport torch.func\n"
        "def f(x):\n    x.requires_grad_(True)\n    y = torch.ones(1, requires_grad=True)\n"
        "    (x * y).sum().backward()\n    return x.grad, torch.autograd.grad, torch.func.vjp\n")
    found = " ".join(autograd_uses(planted))
    for marker in ("from torch.autograd", "import", ".requires_grad_", "requires_grad=",
                   ".backward", ".grad", ".autograd", ".func"):
        assert marker in found
