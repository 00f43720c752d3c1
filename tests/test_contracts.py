"""The project's contracts: the registry is complete, one name is used everywhere, the
layers point one way, and ``manual_grads`` is algebra, not autograd."""

import ast
import dataclasses
import importlib
import pkgutil
from pathlib import Path

import pytest

import cases
import handgrad
import manual_grads
from cases import CASES
from handgrad import registry

NOT_CASES = {"__main__"}  # the module of cases/ that holds no case: python -m cases
ROOT = Path(__file__).resolve().parents[1]


def test_every_case_module_is_registered():
    modules = {m.name for m in pkgutil.iter_modules(cases.__path__)} - NOT_CASES
    assert modules == {case.name for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_one_name_everywhere(case):
    assert importlib.import_module(f"cases.{case.name}").CASE is case
    assert case.module.__name__ == f"manual_grads.{case.name}"


def test_a_duplicate_name_is_rejected():
    twin = dataclasses.replace(CASES[0])
    with pytest.raises(ValueError, match=f"{CASES[0].name!r} is registered twice"):
        registry(*CASES, twin)


def imported(path: Path, allowed: frozenset[str] = frozenset()) -> set[str]:
    """The top-level packages a file imports, less the modules in ``allowed``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names if a.name not in allowed}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level and \
                node.module not in allowed:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize(("package", "never", "allowed"), [
    (handgrad, {"cases", "manual_grads", "tests", "benchmarks"}, ()),
    # handgrad.shapes (``handgrad.check``) imports only torch: the algebra may use it
    (manual_grads, {"handgrad", "cases", "tests", "benchmarks"}, ("handgrad.shapes",)),
    (cases, {"tests", "benchmarks"}, ()),
], ids=["handgrad", "manual_grads", "cases"])
def test_layers_never_point_back_up(package, never, allowed):
    files = sorted(Path(package.__file__).parent.glob("*.py"))
    assert files
    found = {f.name: imported(f, frozenset(allowed)) & never for f in files}
    assert {name: hits for name, hits in found.items() if hits} == {}


def test_the_check_the_algebra_imports_is_a_leaf_of_torch_alone():
    assert imported(Path(handgrad.shapes.__file__)) == {"collections", "torch"}


FORBIDDEN_ATTRIBUTES = {"backward", "autograd", "func", "requires_grad", "requires_grad_",
                        "grad", "vjp", "jvp"}
FORBIDDEN_MODULES = ("torch.autograd", "torch.func", "functorch")


def _forbidden(dotted: str) -> bool:
    return any(dotted == m or dotted.startswith(m + ".") for m in FORBIDDEN_MODULES)


def autograd_uses(path: Path) -> list[str]:
    """Every way a file reaches for autograd: imports of its modules under any alias,
    names bound to them, attributes and keywords that name it, ``getattr`` by string."""
    tree = ast.parse(path.read_text(), filename=str(path))
    aliases: dict[str, str] = {}  # a local name -> the dotted thing it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else \
                    a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    hits = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [f"{node.module}.{a.name}" for a in node.names]
            hits += [f"{where}: imports {n}" for n in names if _forbidden(n)]
        elif isinstance(node, ast.Name) and _forbidden(aliases.get(node.id, "")):
            hits.append(f"{where}: {node.id} (= {aliases[node.id]})")
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            hits.append(f"{where}: .{node.attr}")
        elif isinstance(node, ast.keyword) and node.arg == "requires_grad":
            hits.append(f"{where}: requires_grad=")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr") and len(node.args) > 1
              and isinstance(node.args[1], ast.Constant)
              and node.args[1].value in FORBIDDEN_ATTRIBUTES):
            hits.append(f"{where}: {node.func.id}(..., {node.args[1].value!r})")
    return hits


def test_manual_grads_uses_no_autograd():
    files = sorted(Path(manual_grads.__file__).parent.glob("*.py"))
    assert len(files) > len(CASES)
    assert [hit for f in files for hit in autograd_uses(f)] == []


PLANTED = {
    "from torch.autograd import grad": "imports torch.autograd.grad",
    "import torch.autograd as ag": "imports torch.autograd",
    "from torch import func as F\nF.vjp": "F (= torch.func)",
    "from torch import autograd\nautograd": "autograd (= torch.autograd)",
    "import functorch": "imports functorch",
    "import torch as T\nT.autograd.grad": ".autograd",
    "x.requires_grad_(True)": ".requires_grad_",
    "torch.ones(1, requires_grad=True)": "requires_grad=",
    "loss.backward()": ".backward",
    "x.grad": ".grad",
    "getattr(loss, 'backward')()": "getattr(..., 'backward')",
}


@pytest.mark.parametrize(("source", "found"), PLANTED.items(), ids=list(PLANTED.values()))
def test_the_autograd_scan_finds_each_way_in(tmp_path, source, found):
    planted = tmp_path / "planted.py"
    planted.write_text(source + "\n")
    assert any(found in hit for hit in autograd_uses(planted)), autograd_uses(planted)


def test_the_autograd_scan_passes_plain_algebra(tmp_path):
    plain = tmp_path / "plain.py"
    plain.write_text("import torch\nfrom torch import nn\ny = torch.relu(x) @ w.T\n")
    assert autograd_uses(plain) == []
    assert ROOT.joinpath("manual_grads").is_dir()
