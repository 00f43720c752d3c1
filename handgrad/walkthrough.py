"""A case told step by step: its example's inputs, every forward value, then each line of
the backward with its result by hand and by autograd, side by side."""

import ast
import inspect
from collections.abc import Iterator

import torch

from handgrad.case import Case
from handgrad.probes import decimals

SHOWN = 8  # values of a tensor printed


def show(t: torch.Tensor, places: int | None = None) -> str:
    """A tensor's values, to ``places`` decimals or else to 6 significant digits; a big one
    as its shape and first ``SHOWN`` values."""
    values = t.detach().flatten().tolist()
    spec = ".6g" if places is None else f".{places}f"
    text = ", ".join(f"{v:{spec}}" for v in values[:SHOWN])
    if t.dim() == 0:
        return text
    more = len(values) > SHOWN
    shape = f"shape {tuple(t.shape)}: " if t.dim() > 1 or more else ""
    return f"{shape}[{text}{', ...' if more else ''}]"


def code_lines(case: Case) -> dict[str, str]:
    """For each ``d_<name>``, the line of code that assigns it: the first assignment to it
    in the module's functions (never its docstring, where the derivation names it too)."""
    source = inspect.getsource(case.module)
    lines = source.splitlines()
    found: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            names = target.elts if isinstance(target, ast.Tuple) else [target]
            for n in names:
                if isinstance(n, ast.Name) and n.id.startswith("d_"):
                    line = lines[node.lineno - 1].strip()
                    if n.id not in found or node.lineno < found[n.id][0]:
                        found[n.id] = (node.lineno, line)
    return {name: line for name, (_, line) in found.items()}


def walkthrough(case: Case) -> Iterator[str]:
    """The case's examples (or, where it has none, its own draw) step by step."""
    yield f"{case.name}: {case.source}"
    yield f"  forward:  {case.formula}"
    yield f"  gradient: {case.closed_form}"
    examples = [(e.label, e.tensors(indices=case.indices), e.expected) for e in case.examples]
    if not examples:
        examples = [("the case's own draw (its source prints no numbers)",
                     case.inputs(**case.small_dims), {})]
    code = code_lines(case)
    for label, inputs, expected in examples:
        places = {k: decimals(v) for k, v in expected.items()}
        yield ""
        yield f"Example: {label}"
        yield "  inputs"
        for name, t in inputs.items():
            yield f"    {name:<10} {show(t, places.get(name))}"
        yield "  forward"
        for name, t in case.forward(inputs).items():
            yield f"    {name:<10} {show(t, places.get(name))}"
        yield "  backward, from the output down (each line: the step, by hand, by autograd)"
        manual = case.manual(inputs, steps=True)
        reference = case.reference(inputs, steps=True)
        for name, grad in manual.items():
            line = code.get(f"d_{name}", f"d_{name}")
            yield f"    {line}" if line.startswith(f"d_{name} =") else \
                f"    d_{name}, from: {line}"
            yield f"      by hand      {show(grad, places.get(f'd_{name}'))}"
            if name in reference:
                yield f"      by autograd  {show(reference[name], places.get(f'd_{name}'))}"
    if case.walkthrough is not None:
        yield ""
        yield from case.walkthrough()
