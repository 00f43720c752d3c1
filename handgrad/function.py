"""``FunctionCase``: an op with a backward of its own, checked against a plain reference.

The op is the user's (a ``torch.autograd.Function``'s ``apply``, a ``torch.library`` custom
op with a registered autograd formula, a kernel behind one); the reference is the same math
in plain PyTorch ops, which autograd differentiates. A function case is a ``Case`` whose
module is the pair, so every generic check and the one verdict apply unchanged:

- ``manual`` is ``J^T v`` through the op, its own backward (``torch.autograd.grad``);
  ``reference`` is autograd of the reference. Below float64 the truth is the reference in
  float64 and the baseline the reference in the op's dtype, so an op with no float64 path
  (``dtypes`` without it) is judged as one with it is.
- ``v`` is an input of its own, ``grad_output``, of the output's shape (found from the
  reference at two sets of sizes, or given as ``output_shape``): layouts, magnitudes and
  non-finite entries reach the backward through it as through any input.
- ``forward`` is the op's output (one tensor), judged against the reference's by
  ``forward_matches``. ``function`` (what forward mode and the training steps'
  autograd side differentiate) is the reference; ``through_manual`` (what gradcheck and
  the training steps' manual side differentiate) is the op itself.
- Its gradients are taken from fresh leaves in storage of their own, laid out as drawn
  (strides, offset, stride 0 kept), so a backward that reads storage as if contiguous
  still meets the layout; ``forward`` hands the op the tensors it was given, so the check
  that inputs are left unchanged sees an op that writes into them.

The op runs only in the dtypes it declares: a check in another dtype skips, naming the
declaration (``skip_reason``), and so do the float64-only opinions (finite differences,
forward mode) where float64 is not declared. ``double_backward``, ``compiled`` and
``repeats`` opt into the checks of ``handgrad.function_checks``.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace

import torch

from handgrad.case import DTYPES, Case, dtype_name
from handgrad.untouched import own
from handgrad.verdict import Tensors

GRAD_OUTPUT, OUTPUT = "grad_output", "output"
F64 = torch.float64


def vjp(fn: Callable, inputs: Mapping, args: tuple[str, ...], wrt: tuple[str, ...]) -> dict:
    """``J^T v`` of ``fn(*args)`` toward ``wrt``, ``v`` being ``inputs["grad_output"]``; a
    gradient the backward leaves out (``None``) is zeros."""
    leaves = {k: own(inputs[k]) for k in args}
    for k in wrt:
        if isinstance(leaves[k], torch.Tensor) and leaves[k].is_floating_point():
            leaves[k].requires_grad_()
    with torch.enable_grad():
        out = fn(*leaves.values())
        grads = torch.autograd.grad(out, [leaves[k] for k in wrt], own(inputs[GRAD_OUTPUT]),
                                    allow_unused=True)
    return {k: torch.zeros_like(leaves[k]) if g is None else g
            for k, g in zip(wrt, grads, strict=True)}


class Sides:
    """The op and its reference as the module a ``Case`` reads: ``SHAPES``, ``forward``
    (the op's output) and ``gradients`` (through the op's own backward)."""

    def __init__(self, name: str, function: Callable, reference: Callable,
                 shapes: Mapping[str, str], wrt: tuple[str, ...], dtypes: tuple[str, ...]):
        self.__name__ = name
        self.function, self.reference, self.SHAPES = function, reference, shapes
        self.args = tuple(k for k in shapes if k != GRAD_OUTPUT)
        self.wrt, self.dtypes = wrt, dtypes

    def declared(self, inputs: Mapping) -> None:
        """Refuse a dtype the op does not declare: what it computes there is not a claim."""
        found = {t.dtype for t in inputs.values()
                 if isinstance(t, torch.Tensor) and t.is_floating_point()}
        if len(found) == 1 and (dtype := dtype_name(found.pop())) not in self.dtypes:
            raise ValueError(f"dtypes: {self.__name__} declares {self.dtypes}, got {dtype}")

    def forward(self, **inputs) -> Tensors:
        self.declared(inputs)
        return {OUTPUT: self.function(*(inputs[k] for k in self.args))}

    def gradients(self, **inputs) -> Tensors:
        self.declared(inputs)
        return vjp(self.function, inputs, self.args, self.wrt)


def output_spec(reference: Callable, shapes: Mapping[str, str], dims: Mapping[str, int]) -> str:
    """The output's shape in the symbols of ``shapes``: each axis is the symbol whose size it
    has at distinct small sizes (or a literal size), confirmed at a second set of sizes."""
    probe = SimpleNamespace(shapes=shapes)  # for Case.shape
    first = {s: 2 + i for i, s in enumerate(dims)}
    second = {s: 2 + len(dims) + i for i, s in enumerate(dims)}

    def out_shape(sizes: Mapping[str, int]) -> tuple[int, ...]:
        drawn = [torch.zeros(Case.shape(probe, k, sizes), dtype=torch.long) if "<" in spec
                 else torch.ones(Case.shape(probe, k, sizes), dtype=F64)
                 for k, spec in shapes.items()]
        return tuple(reference(*drawn).shape)

    by_size = {n: s for s, n in first.items()}
    spec = " ".join(by_size.get(n, str(n)) for n in out_shape(first))
    got = out_shape(second)
    if tuple(int(s) if s.isdigit() else second[s] for s in spec.split()) != got:
        raise ValueError(f"output_shape: the reference's output at sizes {second} is {got}, "
                         f"not {spec!r} in the symbols of shapes; give output_shape='...'")
    return spec


def _called(f: Callable) -> str:
    """How ``f`` is written in a table: ``RMSNorm.apply``, ``rms_norm_reference``."""
    owner = getattr(f, "__self__", None)
    if isinstance(owner, type):
        return f"{owner.__name__}.{f.__name__}"
    return (getattr(f, "__qualname__", None) or getattr(f, "_qualname", None)  # a custom op
            or type(f).__name__)


@dataclass(frozen=True, init=False)
class FunctionCase(Case):
    """An op with its own backward (``function``) and the same math in plain PyTorch
    (``reference``), both called as ``f(*inputs)`` in the order of ``shapes``.

    ``shapes`` and ``dims`` are as a module's ``SHAPES`` and a ``Case``'s ``dims``;
    ``wrt`` defaults to every floating input. ``dtypes`` the op runs in (every other is
    skipped, with this declaration as the reason). Opt-in checks: ``double_backward``
    (autograd through the op's backward against through the reference's), ``compiled``
    (the op under ``torch.compile``), ``repeats`` (that many runs of the backward equal bit
    for bit).
    """

    dtypes: tuple[str, ...] = tuple(DTYPES)
    double_backward: bool = False
    compiled: bool = False
    repeats: int = 0

    def __init__(self, name: str, function: Callable, reference: Callable,
                 shapes: Mapping[str, str], dims: Mapping[str, int], *,
                 wrt: tuple[str, ...] | None = None, dtypes: tuple[str, ...] = tuple(DTYPES),
                 double_backward: bool = False, compiled: bool = False, repeats: int = 0,
                 output_shape: str | None = None, source: str = "",
                 large: Mapping[str, int] | None = None, most: Mapping[str, int] | None = None):
        for arg, f in (("function", function), ("reference", reference)):
            if not callable(f):
                raise TypeError(f"{arg}: expected a callable, got {type(f).__name__}")
        if GRAD_OUTPUT in shapes:
            raise ValueError(f"shapes: {GRAD_OUTPUT!r} is the output's gradient, drawn by "
                             "handgrad; name the input otherwise")
        dtypes = (dtypes,) if isinstance(dtypes, str) else tuple(dtypes)
        if unknown := [d for d in dtypes if d not in DTYPES]:
            raise ValueError(f"dtypes: {unknown} are not among {list(DTYPES)}")
        if not isinstance(repeats, int) or repeats == 1 or repeats < 0:
            raise ValueError(f"repeats: expected 0 (off) or a number of runs >= 2, got {repeats!r}")
        floating = tuple(k for k, spec in shapes.items() if "<" not in spec)
        wrt = floating if wrt is None else tuple(wrt)
        if bad := [k for k in wrt if k not in floating]:
            raise ValueError(f"wrt: {bad} are not floating inputs in shapes {list(shapes)}")
        spec = output_spec(reference, shapes, dims) if output_shape is None else output_shape
        every = {**shapes, GRAD_OUTPUT: spec}
        super().__init__(
            name=name, source=source or getattr(reference, "__module__", None) or name,
            formula=f"{_called(reference)}({', '.join(shapes)})",
            closed_form=f"{_called(function)}'s own backward",
            module=Sides(name, function, reference, every, wrt, dtypes),
            output=OUTPUT, wrt=wrt, dims=dims, grad_output=GRAD_OUTPUT,
            large=large or {}, most=most or {})
        for field, value in (("dtypes", dtypes), ("double_backward", double_backward),
                             ("compiled", compiled), ("repeats", repeats)):
            object.__setattr__(self, field, value)

    @property
    def home_dtype(self) -> torch.dtype:
        """float64 where declared, else the first declared dtype: what a draw that names no
        dtype is drawn in."""
        return F64 if "float64" in self.dtypes else DTYPES[self.dtypes[0]]

    def inputs(self, device="cpu", dtype=None, seed: int = 0, **dims: int) -> Tensors:
        return super().inputs(device, self.home_dtype if dtype is None else dtype, seed, **dims)

    def reference_forward(self, inputs: Tensors) -> Tensors:
        """The reference's output, keyed as ``forward``'s."""
        return {OUTPUT: self.module.reference(*(own(inputs[k]) for k in self.module.args))}

    def reference(self, inputs: Tensors, steps: bool = False) -> Tensors:
        """Autograd's gradients of the reference (a function has no steps but its inputs)."""
        return vjp(self.module.reference, inputs, self.module.args, self.wrt)

    def holds(self, inputs: Tensors) -> bool:
        """``Case.holds`` on the reference's forward: whether the dtype holds the output."""
        return Case.holds(SimpleNamespace(forward=self.reference_forward), inputs)

    def function(self, inputs: Tensors, backward: str = "autograd"):
        """``f(*wrt)``: the reference (autograd's own rules), or with ``backward="manual"``
        the op, whose backward is the user's."""
        if backward == "manual":
            return super().function(inputs, backward)

        def f(*tensors: torch.Tensor) -> torch.Tensor:
            values = {**inputs, **dict(zip(self.wrt, tensors, strict=True))}
            return self.module.reference(*(values[k] for k in self.module.args))
        return f

    def through_manual(self, inputs: Tensors) -> torch.Tensor:
        """The op itself: its backward is the gradient under test."""
        return self.module.function(*(inputs[k] for k in self.module.args))


# Checks that do not apply to a function case, or not in a dtype it does not declare.
FLOAT64_ONLY = ("test_finite_differences", "test_finite_differences_at_the_case_sizes",
                "test_forward_mode_adjoint_identity", "test_hand_hessian")
OPT_INS = {"function_case": None, "double_backward_case": "double_backward",
           "compiled_case": "compiled", "repeats_case": "repeats"}


def opted_in(cases, flag: str | None) -> list:
    """The function cases, those of them that set ``flag`` where one is given."""
    return [c for c in cases if isinstance(c, FunctionCase) and (flag is None or getattr(c, flag))]


def skip_reason(test: str, params: Mapping) -> str | None:
    """Why a generic test does not run on a function case here, or ``None``."""
    case = next((p for p in params.values() if isinstance(p, FunctionCase)), None)
    if case is None:
        return None
    if test == "test_every_chain_rule_step":
        return (f"{case.name}: a function's backward names no chain-rule step, only its "
                "inputs' gradients, which test_agrees_with_autograd judges")
    dtype = params.get("dtype")
    wanted = dtype_name(dtype) if dtype is not None else "float64" * (test in FLOAT64_ONLY)
    if wanted and wanted not in case.dtypes:
        where = "" if dtype is not None else " (this check runs in float64 only)"
        return f"{case.name} declares dtypes={case.dtypes}: not {wanted}{where}"
    return None
