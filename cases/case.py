"""The ``Case`` record: one worked example, declared once, checked by every generic test."""

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import ModuleType

import torch

Tensors = dict[str, torch.Tensor]


def decimals(text: str) -> int:
    """How many decimals a printed number (or the most precise of several) shows."""
    return max(0, -min(Decimal(t).as_tuple().exponent for t in text.split()))


def assert_printed(actual: torch.Tensor, text: str, what: str = "") -> None:
    """Assert that ``actual`` shows the numbers an article printed as ``text``.

    ``text`` is space-separated numbers in row-major order. The articles print rounded
    numbers and round the inputs they print too, so a value agrees when it is within one
    unit of its last printed digit, plus a relative 1e-5 for the rounding carried through.
    """
    got = actual.detach().flatten().to("cpu", torch.float64)
    want = torch.tensor([float(t) for t in text.split()], dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=10.0 ** -decimals(text),
                               msg=lambda m: f"{what} differs from the printed {text!r}: {m}")


@dataclass(frozen=True)
class Tolerance:
    """An override of ``assert_close``'s default tolerances for one dtype, with its reason."""

    rtol: float
    atol: float
    why: str


@dataclass(frozen=True)
class Example:
    """A worked example as the article prints it.

    ``inputs`` are nested lists of numbers. ``expected`` holds the printed numbers as
    strings, space-separated, in row-major order: a forward value under its name in the
    module's ``forward`` (``"loss"``, ``"y_hat"``), a gradient as ``d_<input>``.
    """

    label: str
    inputs: Mapping[str, object]
    expected: Mapping[str, str]

    def tensors(self, device="cpu", dtype=torch.float64) -> Tensors:
        return {k: torch.tensor(v, dtype=torch.float64).to(device, dtype)
                for k, v in self.inputs.items()}


@dataclass(frozen=True)
class Case:
    """A forward expression, its hand-derived gradient, and how to check one against the other.

    ``module`` is the case's module in ``manual_grads``: its ``forward`` returns the named
    values of the forward pass, ``output`` names the one that is differentiated, and its
    ``gradients`` returns the hand-derived gradient for each input named in ``wrt``.
    ``formula`` and ``closed_form`` are one-line summaries for the README's table.
    Where ``output`` is not a scalar, ``grad_output`` names the input that plays ``v`` in
    ``output.backward(v)``. ``variants`` names other gradient functions of the module that
    must agree too, each with its own tolerance overrides.
    """

    name: str
    source: str
    formula: str  # the forward, in one line, for tables
    closed_form: str  # the hand-derived gradient, in one line, for tables
    module: ModuleType
    output: str
    wrt: tuple[str, ...]
    dims: Mapping[str, int]
    grad_output: str | None = None
    variants: Mapping[str, Mapping[torch.dtype, Tolerance]] = field(default_factory=dict)
    tolerances: Mapping[torch.dtype, Tolerance] = field(default_factory=dict)
    examples: Sequence[Example] = ()

    @property
    def seed(self) -> int:
        """Every draw for this case comes from a generator seeded with this number."""
        return zlib.crc32(self.name.encode())

    @property
    def shapes(self) -> Mapping[str, str]:
        return self.module.SHAPES

    @property
    def small_dims(self) -> dict[str, int]:
        """Small, distinct sizes (2, 3, 4, ...): quick for finite differences, and distinct
        so that a swapped axis cannot go unnoticed."""
        return {symbol: 2 + i for i, symbol in enumerate(self.dims)}

    def inputs(self, device="cpu", dtype=torch.float64, **dims: int) -> Tensors:
        """Standard-normal inputs, drawn in float64 on the CPU, then cast and moved.

        Every device and dtype sees the same values. ``dims`` overrides the case's sizes.
        """
        sizes = {**self.dims, **dims}
        gen = torch.Generator().manual_seed(self.seed)
        drawn = {}
        for name, spec in self.shapes.items():
            shape = [int(s) if s.isdigit() else sizes[s] for s in spec.split()]
            drawn[name] = torch.randn(shape, generator=gen, dtype=torch.float64)
        return {k: t.to(device, dtype) for k, t in drawn.items()}

    def forward(self, inputs: Tensors) -> Tensors:
        """Every named value of the forward pass."""
        args = {k: t for k, t in inputs.items() if k != self.grad_output}
        return self.module.forward(**args)

    def reference(self, inputs: Tensors, steps: bool = False) -> Tensors:
        """Autograd's gradients of ``output`` with respect to ``wrt``.

        With ``steps``, also with respect to every other named value of the forward pass:
        what the chain rule passes through on its way to the inputs.
        """
        leaves = {k: t.detach().requires_grad_(k in self.wrt) for k, t in inputs.items()}
        values = {**self.forward(leaves)}
        out = values.pop(self.output)
        targets = {k: leaves[k] for k in self.wrt}
        if steps:
            targets |= {k: t for k, t in values.items() if t.requires_grad}
        v = leaves[self.grad_output] if self.grad_output else None
        grads = torch.autograd.grad(out, list(targets.values()), grad_outputs=v)
        return dict(zip(targets, grads, strict=True))

    def manual(self, inputs: Tensors, form: str = "gradients", steps: bool = False) -> Tensors:
        """The hand-derived gradients, from detached inputs with autograd switched off.

        Keyed like ``reference``: the inputs in ``wrt``, and with ``steps`` every named
        value of the forward pass too.
        """
        with torch.no_grad():
            detached = {k: t.detach() if isinstance(t, torch.Tensor) else t  # a non-tensor
                        for k, t in inputs.items()}  # goes on, for the module to reject
            grads = getattr(self.module, form)(**detached)
        return grads if steps else {k: grads[k] for k in self.wrt}

    def function(self, inputs: Tensors, backward: str = "autograd"):
        """``f(*wrt) -> output`` with the other inputs held fixed: what ``gradcheck`` and
        ``torch.func`` take. With ``backward="manual"`` autograd differentiates ``f`` by the
        hand-derived gradient (``through_manual``) instead of by its own rules."""
        def f(*tensors: torch.Tensor) -> torch.Tensor:
            values = {**inputs, **dict(zip(self.wrt, tensors, strict=True))}
            if backward == "manual":
                return self.through_manual(values)
            return self.forward(values)[self.output]
        return f

    def vjp(self, inputs: Tensors, v: torch.Tensor, form: str = "gradients") -> Tensors:
        """The manual ``J^T v``: ``v`` is the output's gradient (a scalar for a loss)."""
        if self.grad_output:
            return self.manual({**inputs, self.grad_output: v}, form)
        return {k: v * g for k, g in self.manual(inputs, form).items()}

    def through_manual(self, inputs: Tensors) -> torch.Tensor:
        """The output, differentiable by autograd, whose backward is the manual gradient.

        This is how a hand-derived gradient is used in training, and how finite
        differences check it with autograd's own derivative out of the loop.
        """
        names = tuple(k for k in inputs if k != self.grad_output)
        return ManualBackward.apply(self, names, *(inputs[k] for k in names))

    def assert_close(self, manual: Tensors, reference: Tensors, form: str = "gradients") -> None:
        """``torch.testing.assert_close`` on each gradient, at this case's tolerance.

        On a mismatch the message starts with the case, device, dtype and gradient, then
        gives ``assert_close``'s own report (mismatched elements, worst index, absolute and
        relative error), the norm-relative error ``|a - b| / max(|a|, |b|)`` (2-norms) and
        the manual and autograd values at the worst index.
        """
        if manual.keys() != reference.keys():
            raise AssertionError(f"{self.name}: the manual side gives gradients for "
                                 f"{sorted(manual)}, autograd for {sorted(reference)}")
        for name, want in reference.items():
            got = manual[name]
            torch.testing.assert_close(
                got, want, **self.tolerance(want.dtype, form),
                msg=lambda default, n=name, a=got, b=want: self._explain(n, a, b, form, default))

    def _explain(self, name: str, got: torch.Tensor, want: torch.Tensor, form: str,
                 default: str) -> str:
        where = f"{self.name} [{want.device.type}, {str(want.dtype).removeprefix('torch.')}]"
        head = f"{where}: d_{name} by hand ({form}) differs from autograd.\n{default}"
        if got.shape != want.shape:
            return head
        diff = (got - want).abs()
        worst = tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape))
        scale = max(got.norm().item(), want.norm().item())
        norm_rel = diff.norm().item() / scale if scale else float("nan")
        return (f"{head}\nNorm-relative error |a - b| / max(|a|, |b|): {norm_rel:.3e}\n"
                f"At the worst index {worst}: manual {got[worst].item():.10g}, "
                f"autograd {want[worst].item():.10g}")

    def tolerance(self, dtype: torch.dtype, form: str = "gradients") -> dict[str, float]:
        """Keyword arguments for ``assert_close``: empty means torch's defaults."""
        overrides = self.tolerances if form == "gradients" else self.variants[form]
        tol = overrides.get(dtype)
        return {} if tol is None else {"rtol": tol.rtol, "atol": tol.atol}


class ManualBackward(torch.autograd.Function):
    """Forward: the case's forward. Backward: the case's hand-derived ``J^T grad_output``."""

    @staticmethod
    def forward(ctx, case: Case, names: tuple[str, ...], *tensors: torch.Tensor):
        ctx.case, ctx.names = case, names
        ctx.save_for_backward(*tensors)
        return case.forward(dict(zip(names, tensors, strict=True)))[case.output]

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        inputs = dict(zip(ctx.names, ctx.saved_tensors, strict=True))
        grads = ctx.case.vjp(inputs, grad_output)
        return None, None, *(grads.get(name) for name in ctx.names)


def registry(*cases: Case) -> tuple[Case, ...]:
    """The cases in order; a name used twice is an error."""
    seen = set()
    for case in cases:
        if case.name in seen:
            raise ValueError(f"case name {case.name!r} is registered twice")
        seen.add(case.name)
    return cases
