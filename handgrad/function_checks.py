"""The checks only a function case has: its forward against the reference's, bad input, and
the opt-in ones (``double_backward``, ``compiled``, ``repeats``).

- forward: the op's output against the reference's by the verdict (the truth: the
  reference in float64), on the default draw, every size 1, the layouts, the magnitudes and
  the non-finite entries: a mistake made in the forward and repeated in the backward agrees
  with itself, not with the reference.
- bad input: an op is not held to handgrad's own contract (a ``ValueError`` naming the
  argument; ``handgrad.check`` gives it) but to what its reference does. Each input spoiled
  one way at a time, the op either raises (any error: a kernel may leave it to torch), or
  returns what the reference returns on the same input: the same names and shapes, and by
  the verdict the same values where the inputs are of one floating dtype on a real device.
  What fails is a result the reference does not give (an op that broadcasts ``(N, 1)``
  against ``(N,)`` where its reference refuses) and so a silently wrong gradient.
- double backward: autograd through the op's backward against through the reference's:
  ``d/d(inputs, v) <J^T v, w>`` for a drawn ``w``, by the verdict. A backward that uses
  values saved without a graph (``rstd`` from the forward) gives a wrong one silently.
- compiled: the op under ``torch.compile``, its gradients judged again. Where the op does
  not compile, the reference is tried: if it does not either, torch cannot compile here,
  and the check is ``Unavailable`` with torch's reason.
- repeats: ``repeats`` runs of the backward on one draw, equal bit for bit. Not a verdict:
  the property is equality; a failure gives the spread, ``max |run_i - run_0|``.
"""

import warnings
from collections.abc import Callable, Iterator

import torch

from handgrad import probes
from handgrad.case import dtype_name
from handgrad.draws import DRAWS
from handgrad.function import GRAD_OUTPUT, OUTPUT, FunctionCase, vjp
from handgrad.judgement import Verdict
from handgrad.measure import compare, measure
from handgrad.opinions import forward_matches
from handgrad.untouched import own
from handgrad.verdict import Tensors

FORWARD_DRAWS = ("default", "size one", "layouts", "magnitudes", "non-finite")


def _label(case: FunctionCase, device, dtype, what: str) -> str:
    return f"{case.name} [{torch.device(device).type}, {dtype_name(dtype)}] {what}"


def forward_verdicts(case: FunctionCase, device, dtype) -> Iterator[Verdict]:
    """The op's output against the reference's on each draw of ``FORWARD_DRAWS``."""
    for draw in FORWARD_DRAWS:
        for label, inputs in DRAWS[draw](case, device, dtype):
            yield forward_matches(case, lambda x: case.reference_forward(x)[OUTPUT], inputs,
                                  _label(case, device, dtype, f"forward, {label}"))


# Bad input ------------------------------------------------------------------------------

def _agrees(op: Callable, reference: Callable, inputs: Tensors) -> bool:
    try:
        got = op(inputs)
    except Exception:  # refused: any error will do
        return True
    try:
        want = reference(inputs)
    except Exception:  # the op returned where its own math refuses
        return False
    if set(got) != set(want) or any(not isinstance(g, torch.Tensor) or g.shape != want[k].shape
                                    for k, g in got.items()):
        return False
    tensors = list(inputs.values())
    if not all(isinstance(t, torch.Tensor) and t.device.type != "meta" for t in tensors) or len(
            {t.dtype for t in tensors if t.is_floating_point()}) != 1:
        return True  # the values are not the verdict's to judge: the shapes had to do
    return compare("bad input", lambda _: got, reference, inputs).passed


def bad_input_outcomes(case: FunctionCase) -> Iterator[tuple[str, str, bool]]:
    """Every spoiled input of the op's forward and backward (``probes.spoiled``): (kind,
    "function(argument)", refused or as the reference)."""
    inputs = case.inputs(**case.small_dims)
    sides = {"forward": (case.forward, case.reference_forward),
             "gradients": (case.manual, case.reference)}
    for label, (op, reference) in sides.items():
        takes = set(inputs) - ({GRAD_OUTPUT} if label == "forward" else set())
        for name in sorted(takes):
            for kind, bad, _, _ in probes.spoiled(case, inputs, name, takes):
                yield kind, f"{label}({name})", _agrees(op, reference, {**inputs, name: bad})


# Opt-in checks --------------------------------------------------------------------------

def _second_order(case: FunctionCase, fn: Callable) -> Callable[[Tensors], Tensors]:
    """``x -> d/d(wrt, v) <J^T v, w>`` through ``fn``'s backward, ``w`` the inputs'
    ``"w <name>"``: one row of the Hessian-vector products autograd takes of ``fn``."""
    args, wrt = case.module.args, case.wrt

    def run(x: Tensors) -> Tensors:
        leaves = {k: own(x[k]) for k in (*args, GRAD_OUTPUT)}
        targets = [leaves[k].requires_grad_() for k in (*wrt, GRAD_OUTPUT)]
        with torch.enable_grad():
            out = fn(*(leaves[k] for k in args))
            grads = torch.autograd.grad(out, targets[:-1], leaves[GRAD_OUTPUT],
                                        create_graph=True, allow_unused=True)
            total = sum((g * x[f"w {k}"]).sum() for k, g in zip(wrt, grads, strict=True)
                        if g is not None)
            if not isinstance(total, torch.Tensor) or not total.requires_grad:
                raise AssertionError(f"{case.name}: the backward's gradients carry no graph "
                                     "(computed without autograd, or once_differentiable): "
                                     "it has no double backward")
            second = torch.autograd.grad(total, targets, allow_unused=True)
        return {f"{k} (double backward)": torch.zeros_like(t) if s is None else s.detach()
                for k, t, s in zip((*wrt, GRAD_OUTPUT), targets, second, strict=True)}
    return run


def double_backward(case: FunctionCase, device, dtype) -> Verdict:
    """The op's double backward against the reference's, on the default draw."""
    inputs = case.inputs(device, dtype)
    gen = torch.Generator().manual_seed(case.seed + 6)
    inputs |= {f"w {k}": torch.randn(inputs[k].shape, generator=gen, dtype=torch.float64
                                     ).to(device, dtype) for k in case.wrt}
    return compare(_label(case, device, dtype, "double backward, default draw"),
                   _second_order(case, case.module.function),
                   _second_order(case, case.module.reference), inputs)


class Unavailable(Exception):
    """torch cannot run the check here (it cannot compile the reference either)."""


def compiled(case: FunctionCase, device, dtype) -> Verdict:
    """The op under ``torch.compile`` (inductor), its gradients against the reference's by
    the verdict, on the default draw. Caches are reset first: every dtype compiles anew,
    and no cache limit sends a call back to eager unseen."""
    inputs = case.inputs(device, dtype)

    def gradients(fn: Callable) -> Tensors:
        torch._dynamo.reset()
        op = torch.compile(lambda *a: fn(*a), dynamic=False)
        return vjp(op, inputs, case.module.args, case.wrt)

    with warnings.catch_warnings():  # what torch deprecates inside its own tracing
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\b")
        try:
            got = gradients(case.module.function)
        except Exception:
            _unless_unavailable(lambda: gradients(case.module.reference))
            raise
    return measure(case.reference, inputs).judge(
        _label(case, device, dtype, "under torch.compile, default draw"), got)


def _unless_unavailable(reference: Callable) -> None:
    """Run the reference under compile; where it fails too, torch cannot compile here."""
    try:
        reference()
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise Unavailable(f"torch.compile cannot compile the reference either here: "
                          f"{type(error).__name__}: {reason}") from error


def _bits(t: torch.Tensor) -> torch.Tensor:
    ints = {8: torch.int64, 4: torch.int32, 2: torch.int16, 1: torch.int8}
    return t.contiguous().view(ints[t.element_size()])


def _spread(run: torch.Tensor, first: torch.Tensor) -> float | None:
    """``max |run - first|`` over the entries that differ bit for bit (a NaN against a
    number: inf), ``None`` where none does."""
    if run.shape != first.shape:
        return torch.inf
    differ = _bits(run) != _bits(first)
    if not differ.any():
        return None
    return float((run.double() - first.double()).abs()[differ.view(run.shape)].nan_to_num(
        torch.inf).max())


def repeat_spread(case: FunctionCase, device, dtype) -> list[str]:
    """``case.repeats`` runs of the backward on the default draw: for each gradient that
    differs bit for bit between runs, how many runs differ and by how much."""
    inputs = case.inputs(device, dtype)
    runs = [case.manual(inputs) for _ in range(case.repeats)]
    found = []
    for name, first in runs[0].items():
        spreads = [_spread(run[name], first) for run in runs[1:]]
        if differ := [s for s in spreads if s is not None]:
            found.append(f"d_{name}: {len(differ)} of {case.repeats - 1} runs differ from the "
                         f"first bit for bit; spread max |run_i - run_0| = {max(differ):.3g}")
    return found


def assert_deterministic(case: FunctionCase, device, dtype) -> None:
    found = repeat_spread(case, device, dtype)
    assert not found, "\n".join([_label(case, device, dtype, f"{case.repeats} runs of the "
                                        "backward, default draw:"), *found])

