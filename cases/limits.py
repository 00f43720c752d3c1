"""How wrong a gradient must be before handgrad notices, and what bad input gets.

Both are measured, not typed: ``python -m cases --update-readme README.md`` writes the
README's tables from the functions here, and the tests hold them.
"""

import re
from collections.abc import Iterable, Iterator

import torch

from cases.case import Case

# Relative errors tried, 1e-9 to 1e-1 in half decades.
LADDER = (*(m * 10.0**e for e in range(-9, -1) for m in (1, 3)), 1e-1)


def detection_limit(case: Case, dtype: torch.dtype, device: str = "cpu") -> float:
    """The smallest uniform relative error of the manual gradient (every entry times
    ``1 + eps``) that ``Case.assert_close`` rejects, along with every larger one tried."""
    inputs = case.inputs(device, dtype)
    manual, reference = case.manual(inputs), case.reference(inputs)

    def rejected(eps: float) -> bool:
        try:
            case.assert_close({k: g * (1 + eps) for k, g in manual.items()}, reference)
        except AssertionError:
            return True
        return False

    limit = float("inf")
    for eps in reversed(LADDER):
        if not rejected(eps):
            break
        limit = eps
    return limit


def limits_table(cases: Iterable[Case]) -> str:
    dtypes = (torch.float64, torch.float32)
    lines = ["| case | float64 | float32 |", "| --- | --- | --- |"]
    for case in cases:
        cells = [f"{detection_limit(case, dtype):.0e}" for dtype in dtypes]
        lines.append(f"| `{case.name}` | {' | '.join(cells)} |")
    return "\n".join(lines)


# Bad input ------------------------------------------------------------------------------

def calls(case: Case):
    """Each public function of the case, as a callable on the full input dict."""
    yield "forward", case.forward
    forms = ("gradients", *case.variants, *["hessians"] * hasattr(case.module, "hessians"))
    for form in forms:
        yield form, lambda inputs, form=form: case.manual(inputs, form)


def spoiled(case: Case, inputs, name: str, takes: set[str]):
    """Ways to spoil one input of a call: (kind, bad value, error type, message pattern).

    Every message must name the argument: ``name: ...`` where it is the culprit, or the
    argument it disagrees with where the size or dtype was set by ``name``.
    """
    t = inputs[name]
    yield "integer dtype", t.to(torch.int64), ValueError, rf"^{name}: dtype torch.int64 is not"
    yield "a unit axis too many, e.g. (N, 1) for (N,)", t.unsqueeze(-1), ValueError, \
        rf"^{name}: expected shape"
    yield "a list, not a tensor", t.tolist(), TypeError, rf"^{name}: expected a torch.Tensor"
    if len(takes) > 1:
        other = torch.float32 if t.dtype == torch.float64 else torch.float64
        yield "two dtypes mixed", t.to(other), ValueError, rf"{name}\b.*one dtype"
        yield "two devices mixed (cpu and meta)", t.to("meta"), ValueError, \
            rf"{name}\b.*one device"
    for axis, symbol in enumerate(case.shapes[name].split()):
        if symbol.isdigit():
            continue  # a fixed size: the extra axis covers it
        yield "an empty batch or axis (size 0)", t.narrow(axis, 0, 0), ValueError, \
            rf"{name}\b.*{symbol}"
        if any(symbol in case.shapes[other].split() for other in takes - {name}):
            grown = torch.cat([t, t.narrow(axis, 0, 1)], dim=axis)
            yield "sizes that disagree", grown, ValueError, \
                rf"{name}\b.*{symbol}=|{symbol}=.*{name}\b"


def _rejects(call, inputs, error: type, pattern: str) -> bool:
    try:
        call(inputs)
    except error as e:
        return re.search(pattern, str(e)) is not None
    return False


def _same_non_finite(case: Case, inputs) -> bool:
    """Manual and autograd agree, NaN for NaN and inf for inf."""
    manual, reference = case.manual(inputs), case.reference(inputs)
    try:
        torch.testing.assert_close(manual, reference, equal_nan=True)
    except AssertionError:
        return False
    return True


def bad_input_outcomes(case: Case) -> Iterator[tuple[str, str, bool]]:
    """Every spoiled input of every function: (kind, "function(argument)", as it must be)."""
    inputs = case.inputs(**case.small_dims)
    for label, call in calls(case):
        takes = set(inputs) - ({case.grad_output} if label == "forward" else set())
        for name in sorted(takes):
            for kind, bad, error, pattern in spoiled(case, inputs, name, takes):
                yield kind, f"{label}({name})", _rejects(call, {**inputs, name: bad}, error,
                                                         pattern)
    for name in inputs:
        for kind, value in (("NaN in one entry", float("nan")), ("inf in one entry", float("inf"))):
            spoilt = {**inputs, name: inputs[name].clone()}
            spoilt[name].view(-1)[0] = value
            yield kind, f"gradients({name})", _same_non_finite(case, spoilt)


def bad_input_table(cases: Iterable[Case]) -> str:
    counts: dict[str, list[int]] = {}
    for case in cases:
        for kind, _, ok in bad_input_outcomes(case):
            tally = counts.setdefault(kind, [0, 0])
            tally[0] += 1
            tally[1] += ok
    lines = ["| bad input | tried | gets | as it must |", "| --- | --- | --- | --- |"]
    for kind, (tried, ok) in counts.items():
        gets = ("the same NaN/inf from manual and autograd" if kind.endswith("entry")
                else "`TypeError` naming the argument" if kind.startswith("a list")
                else "`ValueError` naming the argument")
        lines.append(f"| {kind} | {tried} | {gets} | {ok} of {tried} |")
    return "\n".join(lines)
