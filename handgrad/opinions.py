"""Every check of a case, as plain functions: what ``handgrad.checks`` (pytest) and
``handgrad.verify`` (a report) both run.

Each function returns ``Verdict``s or raises ``AssertionError`` with the reason. The
verdict-based ones judge the manual gradients against autograd on a draw
(``handgrad.draws``); the others take an opinion autograd's reverse mode has no part in:

- finite differences: ``gradcheck`` in float64 on a function whose backward *is* the manual
  gradient (``Case.through_manual``);
- forward mode: the adjoint identity ``<v, J u> = <J^T v, u>``, with ``J u`` from
  ``torch.func.jvp`` and ``J^T v`` from the manual gradient;
- second order: a hand Hessian (where the module has ``hessians``) against
  ``torch.func.hessian``;
- training: SGD steps taken with the manual gradient, through torch's optimiser and by a
  plain ``p - lr * g``, against autograd's, step by step, by the verdict;
- the inputs: every function of the module leaves what it is given as it was
  (``inputs_unchanged``).
"""

import importlib
from collections.abc import Iterator

import torch

from handgrad.case import Case, dtype_name
from handgrad.draws import DRAWS
from handgrad.judgement import Excused, Verdict
from handgrad.measure import compare
from handgrad.untouched import changes, records
from handgrad.verdict import Tensors

F64 = torch.float64
HALF = (torch.bfloat16, torch.float16)


def opted_out(case: Case, form: str | None, dtype: torch.dtype | None) -> bool:
    """Whether ``form`` is declared ``full_precision_only`` and ``dtype`` is half precision."""
    return form in getattr(case, "full_precision_only", ()) and dtype in HALF


def excused(case: Case, form: str | None, dtype: torch.dtype | None,
            verdicts: list[Verdict]) -> bool:
    """Whether an opt-out covers these verdicts' failures: the form is ``opted_out`` here,
    something failed, and every failure is the form running out of half precision's range
    (NaN or inf where autograd is finite) and right in float64. Not a finite error, however
    close: the diagnosis reruns manual in float64, which a mistake made only in one dtype
    passes (a form 50 % off in bfloat16 alone); nor one that cannot be run in float64."""
    bad = [v for v in verdicts if not v.passed]
    return opted_out(case, form, dtype) and bool(bad) and all(v.only_out_of_range for v in bad)


def excuse(verdicts, case: Case, form: str | None = None, dtype=None) -> list[Verdict]:
    """The verdicts, as a list; ``Excused`` instead where an opt-out covers every failure
    among them (``excused``)."""
    verdicts = list(verdicts)
    if excused(case, form, dtype, verdicts):
        bad = [v for v in verdicts if not v.passed]
        raise Excused(f"{case.name}: {form} is declared full_precision_only; in "
                      f"{dtype_name(dtype)} {len(bad)} of {len(verdicts)} input sets fail, "
                      f"each overflowing where autograd does not, right in float64: "
                      f"{bad[0].diagnosed.explain()}")
    return verdicts


def all_hold(verdicts, case: Case, form: str | None = None, dtype=None) -> int:
    """Every verdict judged, and their number; the first failure (a wrong one before one
    only less accurate) raises its ``VerdictError``, or ``excuse`` raises ``Excused``."""
    verdicts = excuse(verdicts, case, form, dtype)
    assert verdicts, "the draw produced no inputs"
    for verdict in sorted((v for v in verdicts if not v.passed),
                          key=lambda v: v.only_out_of_range):
        verdict.check()
    return len(verdicts)


def draw_verdicts(case: Case, draw: str, device, dtype, form: str = "gradients",
                  steps: bool = False) -> Iterator[Verdict]:
    """The verdict on each input set of one draw (``handgrad.draws.DRAWS``)."""
    for label, inputs in DRAWS[draw](case, device, dtype):
        yield case.verdict(inputs, form, steps, label)


def forward_matches(case: Case, torch_op, inputs: Tensors, label: str) -> Verdict:
    """The case's output against ``torch_op(inputs)``, the library op its forward stands
    for, by the verdict (the truth: ``torch_op`` in float64): a case is judged against
    autograd of its own forward, and this pins that forward to what it claims to be."""
    given = {k: t for k, t in inputs.items() if k != case.grad_output}
    return compare(label, lambda x: {case.output: case.forward(x)[case.output]},
                   lambda x: {case.output: torch_op(x)}, given)


def library_op_verdict(case: Case, device, dtype) -> Verdict:
    """``forward_matches`` against the case's own ``library_op``, on the default draw."""
    return forward_matches(case, lambda x: case.library_op(**x), case.inputs(device, dtype),
                           f"{case.name} [{device}, {dtype_name(dtype)}] forward against its "
                           "library_op")


# The draws whose inputs a call might change: values past a clamp and NaN and inf to clean
# (extremes, every input at once), every layout (a write through a strided or transposed view). The
# layouts come last: an in-place write into a stride-0 view raises torch's own error.
UNCHANGED_DRAWS = ("extremes", "default", "size one", "layouts")


def inputs_unchanged(case: Case, device, dtype) -> int:
    """The module's ``forward``, each backward form and ``hessians``, called directly on
    each input set of ``UNCHANGED_DRAWS`` at the small sizes, leave every input as it was,
    bit for bit, layout too (``handgrad.untouched``); else ``AssertionError`` names the
    function and the argument. Returns the number of calls checked."""
    functions = ["forward", *case.forms, *["hessians"] * hasattr(case.module, "hessians")]
    small, calls = case.resized(**case.small_dims), 0
    for draw in UNCHANGED_DRAWS:
        for label, inputs in DRAWS[draw](small, device, dtype):
            for name in functions:
                given = {k: t for k, t in inputs.items()
                         if name != "forward" or k != case.grad_output}
                before = records(given)
                with torch.no_grad():
                    getattr(case.module, name)(**given)
                changed = changes(before, given)
                calls += 1
                assert not changed, "; ".join(
                    f"{case.name} [{device}, {dtype_name(dtype)}]: {name} changed its argument "
                    f"{arg} in place ({label}): {how}" for arg, how in changed.items())
    return calls


def gradcheck(case: Case, device, fast_mode: bool = False) -> bool:
    """Finite differences on the manual gradient, float64: every Jacobian entry on the
    small sizes, or one random projection of it (``fast_mode``) at the case's own sizes."""
    sizes = {} if fast_mode else case.small_dims
    inputs = case.inputs(device, F64, **sizes)
    wrt = [inputs[k].requires_grad_() for k in case.wrt]
    if not fast_mode:
        return torch.autograd.gradcheck(case.function(inputs, "manual"), wrt)
    # On a mismatch fast mode recomputes both full Jacobians for its message; at the sizes
    # of a real layer (1000 x 784 inputs) that needs tens of GB, so that step is a note.
    slow = importlib.import_module("torch.autograd.gradcheck")
    keep = slow._run_slow_mode_and_get_error
    slow._run_slow_mode_and_get_error = lambda *a, **k: "\n(full Jacobians not recomputed)"
    try:
        return torch.autograd.gradcheck(case.function(inputs, "manual"), wrt, fast_mode=True)
    finally:
        slow._run_slow_mode_and_get_error = keep


def adjoint_identity(case: Case, device) -> Verdict:
    """``<J^T v, u>`` by the manual gradient against ``<v, J u>`` by forward mode
    (``torch.func.jvp``), for random ``u`` and ``v``, by the verdict (float64). Its second
    look runs ``jvp`` under random rounding, which leaves forward mode's zero tangents
    (ZeroTensors) as they are: computing on one inside a dispatch mode crashes torch
    (``handgrad.rounding``). ``hessian`` likewise."""
    gen = torch.Generator().manual_seed(case.seed + 1)
    inputs = case.inputs(device, F64)
    u = {k: torch.randn(inputs[k].shape, generator=gen, dtype=F64).to(device) for k in case.wrt}
    out_shape = case.forward(inputs)[case.output].shape
    v = torch.randn(out_shape, generator=gen, dtype=F64).to(device)
    names = list(inputs)

    def split(x: Tensors) -> tuple[Tensors, Tensors, torch.Tensor]:
        return ({k: x[k] for k in names}, {k: x[f"u {k}"] for k in case.wrt}, x["v"])

    def by_hand(x: Tensors) -> Tensors:
        at, dirs, w = split(x)
        jt_v = case.vjp(at, w)
        return {"<J^T v, u>": sum((jt_v[k] * dirs[k]).sum() for k in case.wrt)}

    def forward_mode(x: Tensors) -> Tensors:
        at, dirs, w = split(x)
        _, j_u = torch.func.jvp(case.function(at), tuple(at[k] for k in case.wrt),
                                tuple(dirs[k] for k in case.wrt))
        return {"<J^T v, u>": (w * j_u).sum()}

    inputs |= {f"u {k}": t for k, t in u.items()} | {"v": v}
    return compare(f"{case.name} [{device}, float64] adjoint identity with forward mode",
                   by_hand, forward_mode, inputs)


def hessian(case: Case, device) -> Verdict:
    """The hand Hessian against ``torch.func.hessian``, by the verdict (float64)."""
    inputs = case.inputs(device, F64, **case.small_dims)

    def hand(x: Tensors) -> Tensors:
        blocks = case.manual(x, "hessians", steps=True)
        return {f"{a}, {b}": blocks[a][b] for a in case.wrt for b in case.wrt}

    def auto(x: Tensors) -> Tensors:
        argnums = tuple(range(len(case.wrt)))
        h = torch.func.hessian(case.function(x), argnums)(*(x[k] for k in case.wrt))
        return {f"{a}, {b}": h[i][j] for i, a in enumerate(case.wrt)
                for j, b in enumerate(case.wrt)}

    return compare(f"{case.name} [{device}, float64] hand Hessian", hand, auto, inputs)


TRAINING_STEPS = 5


def learning_rate(case: Case) -> float:
    """A step that moves a parameter by at most 0.01 at first, from the float64 draw:
    the same in every dtype, so every side takes the same steps."""
    grads = case.reference(case.inputs(**case.small_dims))
    return 0.01 / max(float(g.abs().max()) for g in grads.values())


def training(case: Case, device, dtype) -> Verdict:
    """``TRAINING_STEPS`` steps of SGD on ``wrt``: torch's optimiser driven by the manual
    gradient (through ``Case.through_manual``), and a plain ``p - lr * g`` with the manual
    gradient and no autograd at all, each against torch's optimiser driven by autograd.
    Every parameter after every step is judged, on the small sizes: what is checked is the
    hand-derived gradient driving an optimiser, which the sizes do not change."""
    lr = learning_rate(case)

    def optimiser_run(inputs: Tensors, backward: str) -> Tensors:
        params = [inputs[k].detach().clone().requires_grad_() for k in case.wrt]
        optimiser = torch.optim.SGD(params, lr=lr)
        f, v = case.function(inputs, backward), inputs.get(case.grad_output)
        after = {}
        for step in range(1, TRAINING_STEPS + 1):
            optimiser.zero_grad()
            f(*params).backward(v)
            optimiser.step()
            after |= {f"{k} after step {step}": p.detach().clone()
                      for k, p in zip(case.wrt, params, strict=True)}
        return after

    def hand_run(inputs: Tensors) -> Tensors:
        params, after = {k: inputs[k] for k in case.wrt}, {}
        for step in range(1, TRAINING_STEPS + 1):
            grads = case.manual({**inputs, **params})
            params = {k: p - lr * grads[k] for k, p in params.items()}
            after |= {f"{k} after step {step}": p for k, p in params.items()}
        return after

    def both(inputs: Tensors) -> Tensors:
        adapter = optimiser_run(inputs, "manual")
        return {**{f"{k} (optimiser)": t for k, t in adapter.items()},
                **{f"{k} (hand)": t for k, t in hand_run(inputs).items()}}

    def reference(inputs: Tensors) -> Tensors:
        run = optimiser_run(inputs, "autograd")
        return {f"{k} ({side})": t for side in ("optimiser", "hand") for k, t in run.items()}

    label = f"{case.name} [{device}, {dtype_name(dtype)}] {TRAINING_STEPS} SGD steps"
    return compare(label, both, reference, case.inputs(device, dtype, **case.small_dims))
