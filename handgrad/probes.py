"""Probes of a case beyond the verdict: bad input, its declaration, its printed examples, and
how wrong a gradient must be before the verdict notices.

Bad input must get a clear error, never a silently wrong gradient: broadcasting turns
``(N, 1) - (N,)`` into ``(N, N)`` without a word, and a mean over that is a wrong number
that looks fine. ``bad_input_outcomes`` feeds every public function of a case each input
spoiled one way at a time and records whether the error named the argument.
"""

import re
from collections.abc import Iterator
from decimal import Decimal

import torch

from handgrad.case import Case, Example
from handgrad.measure import Measured, measure
from handgrad.verdict import Tensors

# Relative errors tried for the detection limit: 1e-13 to 1 at 1, 2 and 5 a decade, fine
# enough to tell bfloat16's 2e-2 from 5e-2 (its unit in the last place is 7.8e-3).
LADDER = (*tuple(m * 10.0 ** e for e in range(-13, 0) for m in (1, 2, 5)), 1.0)


def detection_limit(case: Case, dtype: torch.dtype, device="cpu") -> float:
    """The smallest uniform relative error (every entry of the manual gradient times
    ``1 + eps``) that the verdict rejects, along with every larger one on the ladder."""
    inputs = case.inputs(device, dtype)
    return rejected_from(measure(case.reference, inputs), case.manual(inputs))


def limit_text(eps: float) -> str:
    """A detection limit; at the ladder's first rung, the limit is that or smaller."""
    return f"≤ {eps:.0e}" if eps == LADDER[0] else f"{eps:.0e}"


def rejected_from(measured: Measured, right: Tensors) -> float:
    """``detection_limit`` against autograd already measured, from the right gradients."""
    limit = float("inf")
    for eps in reversed(LADDER):
        scaled = {k: (g.double() * (1 + eps)).to(g.dtype) for k, g in right.items()}
        if measured.judge("", scaled).passed:
            break
        limit = eps
    return limit


# Bad input ------------------------------------------------------------------------------

def calls(case: Case):
    """Each public function of the case, as a callable on the full input dict."""
    yield "forward", case.forward
    forms = (*case.forms, *["hessians"] * hasattr(case.module, "hessians"))
    for form in forms:
        yield form, lambda inputs, form=form: case.manual(inputs, form)


def spoiled(case: Case, inputs: Tensors, name: str, takes: set[str]):
    """Ways to spoil one input of a call: (kind, bad value, error type, message pattern).

    The contract is the error's type and a message that names the argument: it starts
    with ``name`` where ``name`` is the culprit, or names it anywhere where the size,
    dtype or device it disagrees with was set by another argument.
    """
    t = inputs[name]
    culprit, named = rf"^{name}\b", rf"\b{name}\b"
    if name in case.indices:
        yield "floating-point ids", t.double(), ValueError, culprit
        yield "an id out of range", t.clone().fill_(10**6), ValueError, culprit
    else:
        yield "integer dtype", t.to(torch.int64), ValueError, culprit
    yield "a unit axis too many, e.g. (N, 1) for (N,)", t.unsqueeze(-1), ValueError, culprit
    yield "a list, not a tensor", t.tolist(), ValueError, culprit
    floats = [k for k in takes if inputs[k].is_floating_point()]
    if name not in case.indices and len(floats) > 1:
        other = torch.float32 if t.dtype == torch.float64 else torch.float64
        yield "two dtypes mixed", t.to(other), ValueError, named
    if len(takes) > 1:
        yield "two devices mixed (cpu and meta)", t.to("meta"), ValueError, named
    for axis, symbol in enumerate(case.shapes[name].partition("<")[0].split()):
        if symbol.isdigit():
            continue  # a fixed size: the extra axis covers it
        yield "an empty batch or axis (size 0)", t.narrow(axis, 0, 0), ValueError, named
        if any(symbol in case.shapes[other].partition("<")[0].split()
               for other in takes - {name}):
            grown = torch.cat([t, t.narrow(axis, 0, 1)], dim=axis)
            yield "sizes that disagree", grown, ValueError, named


def _rejects(call, inputs, error: type, pattern: str) -> bool:
    try:
        call(inputs)
    except error as e:
        return re.search(pattern, str(e)) is not None
    return False


def bad_input_outcomes(case: Case) -> Iterator[tuple[str, str, bool]]:
    """Every spoiled input of every function: (kind, "function(argument)", as it must be)."""
    if hasattr(case, "reference_forward"):  # a function case: held to its reference
        from handgrad.function_checks import bad_input_outcomes

        yield from bad_input_outcomes(case)
        return
    inputs = case.inputs(**case.small_dims)
    for label, call in calls(case):
        takes = set(inputs) - ({case.grad_output} if label == "forward" else set())
        for name in sorted(takes):
            for kind, bad, error, pattern in spoiled(case, inputs, name, takes):
                yield kind, f"{label}({name})", _rejects(call, {**inputs, name: bad}, error,
                                                         pattern)


# The declaration and the printed examples ---------------------------------------------

def assert_declaration(case: Case) -> None:
    for symbol, least in case.least.items():
        if symbol not in case.dims:
            raise ValueError(f"{case.name}: least names {symbol!r}, which is no size symbol "
                             f"(the symbols: {', '.join(case.dims)})")
        caps = {k: m[symbol] for k, m in (("dims", case.dims), ("most", case.most)) if symbol in m}
        if not isinstance(least, int) or not 1 <= least <= min(caps.values()):
            raise ValueError(f"{case.name}: least[{symbol!r}] is {least!r}; it needs an integer "
                             f"from 1 to {min(caps.values())}, at most "
                             + " and ".join(f"{k}[{symbol!r}] = {n}" for k, n in caps.items()))
    inputs = case.inputs()
    forward = case.forward(inputs)
    assert set(case.wrt) <= set(inputs), "wrt names an input the case does not draw"
    assert case.output in forward, f"output {case.output!r} is not a forward value"
    assert forward[case.output].dim() == 0 or case.grad_output in inputs, (
        "a non-scalar output needs a grad_output")
    for form in case.forms:
        assert callable(getattr(case.module, form, None)), f"no function {form!r}"
    steps = case.manual(inputs, steps=True)
    unknown = set(steps) - set(forward) - set(case.wrt)
    prefixed = any(str(k).startswith("d_") for k in unknown)
    assert not unknown, (f"steps {sorted(unknown)} name no forward value: nothing checks them"
                         + "; keys are bare names ({'x': d_x}): drop the d_ prefix" * prefixed)
    again = case.inputs()
    assert all(again[k].equal(t) for k, t in inputs.items()), "inputs are not seeded"


def decimals(text: str) -> int:
    """How many decimals a printed number (or the most precise of several) shows."""
    return max(0, -min(Decimal(t).as_tuple().exponent for t in text.split()))


def assert_printed(actual: torch.Tensor, text: str, what: str = "") -> None:
    """Assert that ``actual`` shows the numbers printed as ``text``: space-separated, in
    row-major order, each within one unit of its last printed digit (the sources round
    what they print, their inputs too), plus a relative 1e-5 for that rounding carried
    through."""
    got = actual.detach().flatten().to("cpu", torch.float64)
    want = torch.tensor([float(t) for t in text.split()], dtype=torch.float64)
    if got.shape != want.shape:
        raise AssertionError(f"{what}: {got.numel()} values, {want.numel()} printed")
    allowed = 10.0 ** -decimals(text) + 1e-5 * want.abs()
    off = (got - want).abs() > allowed
    if off.any():
        i = int(off.nonzero()[0])
        raise AssertionError(f"{what} differs from the printed {text!r}: entry {i} is "
                             f"{got[i].item():.10g}, printed {want[i].item():g}")


def assert_example(case: Case, example: Example, device, dtype) -> None:
    inputs = example.tensors(device, dtype, case.indices)
    forward = case.forward(inputs)
    sides = {"manual": case.manual(inputs), "autograd": case.reference(inputs)}
    for key, text in example.expected.items():
        for side, grads in sides.items():
            values = forward | {f"d_{k}": g for k, g in grads.items()}
            assert_printed(values[key], text, f"{case.name} {example.label} {key} ({side})")
