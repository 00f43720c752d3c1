"""What ``python -m cases`` prints: the verification table, the walkthroughs, the README table."""

import importlib
import inspect
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch

from cases.case import Case, decimals
from cases.limits import bad_input_table, limits_table

DTYPES = {"float64": torch.float64, "float32": torch.float32}
# torch.testing.assert_close's documented defaults, shown where a case keeps them.
DEFAULT_TOLERANCE = {torch.float64: (1e-7, 1e-7), torch.float32: (1.3e-6, 1e-5)}


def devices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@dataclass(frozen=True)
class Row:
    """One line of the verification table."""

    case: str
    device: str
    dtype: str
    check: str
    parameter: str
    max_abs: str
    max_rel: str
    tolerance: str
    verdict: str


def _errors(manual: torch.Tensor, reference: torch.Tensor) -> tuple[str, str]:
    diff = (manual - reference).abs().double()
    rel = torch.where(diff == 0, 0.0, diff / reference.abs().double())
    return f"{diff.max().item():.2e}", f"{rel.max().item():.2e}"


def _agree(manual: torch.Tensor, reference: torch.Tensor, **tolerance: float) -> bool:
    try:
        torch.testing.assert_close(manual, reference, **tolerance)
    except AssertionError:
        return False
    return True


def autograd_rows(case: Case, device: str, dtype: torch.dtype) -> Iterator[Row]:
    """Manual against autograd, one row per gradient and form, judged by ``assert_close``."""
    inputs = case.inputs(device, dtype)
    reference = case.reference(inputs)
    for form in ("gradients", *case.variants):
        manual = case.manual(inputs, form)
        tolerance = case.tolerance(dtype, form)
        rtol, atol = tolerance.values() if tolerance else DEFAULT_TOLERANCE[dtype]
        check = "autograd" if form == "gradients" else f"autograd, {form}"
        for name in case.wrt:
            ok = _agree(manual[name], reference[name], **tolerance)
            yield Row(case.name, device, str(dtype).removeprefix("torch."), check, name,
                      *_errors(manual[name], reference[name]), f"{rtol:g} / {atol:g}",
                      "ok" if ok else "DIFFERS")


def gradcheck_row(case: Case, device: str) -> Row:
    """Finite differences on the manual gradient (float64, small sizes, full mode)."""
    inputs = case.inputs(device, torch.float64, **case.small_dims)
    wrt = [inputs[k].requires_grad_() for k in case.wrt]
    ok = torch.autograd.gradcheck(case.function(inputs, "manual"), wrt, raise_exception=False)
    return Row(case.name, device, "float64", "finite differences", ", ".join(case.wrt),
               "-", "-", "gradcheck defaults", "ok" if ok else "DIFFERS")


def verify(cases: Iterable[Case], devices: Sequence[str], dtypes: Sequence[str]) -> list[Row]:
    rows = []
    for case in cases:
        for device in devices:
            for dtype in dtypes:
                rows += autograd_rows(case, device, DTYPES[dtype])
            if "float64" in dtypes:
                rows.append(gradcheck_row(case, device))
    return rows


def table(rows: Sequence[Row]) -> str:
    """Rows as aligned text columns under a header."""
    header = Row("case", "device", "dtype", "check", "parameter", "max abs err",
                 "max rel err", "rtol / atol", "verdict")
    cells = [list(vars(r).values()) for r in (header, *rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in cells)


# The walkthrough --------------------------------------------------------------------------

def _show(t: torch.Tensor, decimals: int | None = None) -> str:
    """A tensor's values, to ``decimals`` places or else to 6 significant digits; a big one
    as its shape and first values."""
    values = t.detach().flatten().tolist()
    spec = ".6g" if decimals is None else f".{decimals}f"
    text = ", ".join(f"{v:{spec}}" for v in values[:6])
    if t.dim() == 0:
        return text
    shape = f"shape {tuple(t.shape)}: " if t.dim() > 1 or len(values) > 6 else ""
    return f"{shape}[{text}{', ...' if len(values) > 6 else ''}]"


def _decimals(printed: str | None) -> int | None:
    """The number of decimals the article printed a value with (``None``: not printed)."""
    return None if printed is None else decimals(printed)


def _code_line(case: Case, name: str) -> str:
    """The line of the manual gradient that computes ``d_<name>``."""
    pattern = re.compile(rf"^\s*(?:d_\w+, )*d_{name}(?:, d_\w+)* = ")
    for line in inspect.getsource(case.module).splitlines():
        if pattern.match(line):
            return line.strip()
    return f"d_{name}"


def walkthrough(case: Case) -> Iterator[str]:
    """The case's example as the article tells it: inputs, forward values, then the
    backward step by step, by hand and by autograd side by side."""
    yield f"{case.name}: {case.source}"
    yield f"  forward:  {case.formula}"
    yield f"  gradient: {case.closed_form}"
    examples = [(e.label, e.tensors(), e.expected) for e in case.examples]
    if not examples:
        examples = [("the case's own draw (the article prints no numbers)", case.inputs(), {})]
    for label, inputs, expected in examples:
        yield ""
        yield f"Example: {label}"
        yield "  inputs"
        for name, t in inputs.items():
            yield f"    {name:<10} {_show(t, _decimals(expected.get(name)))}"
        yield "  forward"
        for name, t in case.forward(inputs).items():
            yield f"    {name:<10} {_show(t, _decimals(expected.get(name)))}"
        yield "  backward, from the output down (each line: the step, by hand, by autograd)"
        manual = case.manual(inputs, steps=True)
        reference = case.reference(inputs, steps=True)
        for name, grad in manual.items():
            decimals = _decimals(expected.get(f"d_{name}"))
            line = _code_line(case, name)
            yield f"    {line}" if line.startswith(f"d_{name} =") else f"    d_{name}, from: {line}"
            yield f"      by hand      {_show(grad, decimals)}"
            yield f"      by autograd  {_show(reference[name], decimals)}"
    extra = getattr(importlib.import_module(f"cases.{case.name}"), "walkthrough", None)
    if extra is not None:
        yield ""
        yield from extra()


# The README's generated tables -------------------------------------------------------------

def cases_table(cases: Iterable[Case]) -> str:
    lines = ["| case | forward | hand-derived gradient | chain-rule steps checked | "
             "worked-example numbers | checked by |",
             "| --- | --- | --- | --- | --- | --- |"]
    for case in cases:
        steps = case.manual(case.inputs(**case.small_dims), steps=True)
        numbers = sum(len(t.split()) for e in case.examples for t in e.expected.values())
        printed = (f"{numbers} in {len(case.examples)} example"
                   f"{'s' if len(case.examples) > 1 else ''}" if case.examples else "none")
        forms = f" ({1 + len(case.variants)} forms)" if case.variants else ""
        opinions = [f"autograd{forms}", *["worked examples"] * bool(case.examples),
                    "finite differences", "forward mode",
                    *["a hand Hessian"] * hasattr(case.module, "hessians"),
                    "generated shapes", "training"]
        lines.append(f"| `{case.name}` | `{case.formula}` | `{case.closed_form}` | "
                     f"{', '.join(f'`d_{k}`' for k in steps)} | {printed} | "
                     f"{', '.join(opinions)} |")
    return "\n".join(lines)


README_TABLES = {"cases": cases_table, "detection limits": limits_table,
                 "bad input": bad_input_table}


def readme_block(name: str, cases: Sequence[Case]) -> str:
    """A generated README table, between the markers that delimit it there."""
    return f"<!-- generated: {name} -->\n{README_TABLES[name](cases)}\n<!-- end: {name} -->"


def update_readme(readme: str, cases: Sequence[Case]) -> str:
    for name in README_TABLES:
        block = readme_block(name, cases)
        start = readme.index(f"<!-- generated: {name} -->")
        end = readme.index(f"<!-- end: {name} -->") + len(f"<!-- end: {name} -->")
        readme = readme[:start] + block + readme[end:]
    return readme
