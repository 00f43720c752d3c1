"""The ``Case`` record: a forward, its hand-derived gradient, and how to draw inputs for both."""

import copy
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType

import torch

from handgrad.judgement import Verdict
from handgrad.measure import compare
from handgrad.own_error import cast
from handgrad.untouched import own, own_copy
from handgrad.verdict import Tensors

DTYPES = {"float64": torch.float64, "float32": torch.float32,
          "bfloat16": torch.bfloat16, "float16": torch.float16}
LARGE_BATCH = 4096  # the batch size every case is also verified at, at the least


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


@dataclass(frozen=True)
class Example:
    """A worked example as its source prints it.

    ``inputs`` are nested lists of numbers. ``expected`` holds the printed numbers as
    strings, space-separated, in row-major order: a forward value under its name in the
    module's ``forward`` (``"loss"``, ``"y_hat"``), a gradient as ``d_<input>``. A value
    agrees when it is within one unit of its last printed digit, so print an exact value
    with the digits that are meant (``"27.000000"``, not ``"27.0"``).
    """

    label: str
    inputs: Mapping[str, object]
    expected: Mapping[str, str]

    def tensors(self, device="cpu", dtype=torch.float64, indices=()) -> Tensors:
        """The inputs as tensors: those named in ``indices`` as integers, the rest in
        ``dtype``."""
        return {k: torch.tensor(v, device=device) if k in indices else
                torch.tensor(v, dtype=torch.float64).to(device, dtype)
                for k, v in self.inputs.items()}


@dataclass(frozen=True)
class Case:
    """A forward expression, its hand-derived gradient, and what to check one against.

    ``module`` holds the algebra: ``SHAPES`` (the symbolic shape of each input; ``"B T < V"``
    for integer ids below ``V``), ``forward`` (every named value of the forward pass),
    ``gradients`` (the hand-derived gradient of every input in ``wrt``, and of each
    chain-rule step on the way), and optionally ``hessians`` and the other backward forms
    named in ``variants``. ``output`` names the value that is differentiated; where it is
    not a scalar, ``grad_output`` names the input that plays ``v`` in
    ``output.backward(v)``. A form named in ``full_precision_only`` runs every check in
    half precision too, where a failure is excused (XFAIL) only if each failing gradient
    overflows where autograd's does not and is right in float64 (say why beside it).
    ``dims`` are the default sizes; ``large`` overrides the sizes of the large draw (by
    default the batch axis, ``dims``' first symbol, at ``LARGE_BATCH`` or four times its
    default, whichever is more). ``most`` caps a size symbol in the generated shapes, where
    a size costs more than its share of the product of sizes that bounds a draw
    (attention's ``(B, H, T, T)`` grows as T^2).
    ``least`` is the smallest size a symbol takes in every draw (1 where it names none):
    2 for a statistic over ``n - 1`` (Bessel's correction), undefined at ``n = 1``.
    ``examples`` are worked examples with the numbers their source prints;
    ``walkthrough`` yields more lines for ``python -m cases NAME --walkthrough``.
    ``library_op`` is the library op the forward stands for, taking the forward's inputs by
    keyword and returning the output (``lambda x: F.gelu(x, approximate="tanh")``): the
    forward is then judged against it in every dtype, which autograd of the forward itself
    cannot do (a wrong constant repeated in the backward agrees with autograd).
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
    variants: tuple[str, ...] = ()
    full_precision_only: tuple[str, ...] = ()
    large: Mapping[str, int] = field(default_factory=dict)
    most: Mapping[str, int] = field(default_factory=dict)
    least: Mapping[str, int] = field(default_factory=dict)
    examples: Sequence[Example] = ()
    walkthrough: Callable[[], Iterator[str]] | None = None  # more lines for the walkthrough
    library_op: Callable[..., torch.Tensor] | None = None  # what the forward stands for

    @property
    def seed(self) -> int:
        """Every draw for this case comes from a generator seeded with this number."""
        return zlib.crc32(self.name.encode())

    @property
    def shapes(self) -> Mapping[str, str]:
        return self.module.SHAPES

    @property
    def indices(self) -> Mapping[str, str]:
        """Integer inputs (token ids, ``"B T < V"`` in ``SHAPES``), each with the size
        symbol it indexes into."""
        return {name: spec.partition("<")[2].strip() for name, spec in self.shapes.items()
                if "<" in spec}

    @property
    def forms(self) -> tuple[str, ...]:
        return ("gradients", *self.variants)

    @property
    def smallest(self) -> dict[str, int]:
        """Every symbol's least size: 1, or what ``least`` says."""
        return {symbol: self.least.get(symbol, 1) for symbol in self.dims}

    @property
    def small_dims(self) -> dict[str, int]:
        """Small, distinct, increasing sizes (2, 3, 4, ..., each at least its ``least``):
        quick for finite differences, and distinct so that a swapped axis cannot go
        unnoticed."""
        sizes, size = {}, 2
        for symbol, least in self.smallest.items():
            sizes[symbol] = size = max(size, least)
            size += 1
        return sizes

    @property
    def large_dims(self) -> dict[str, int]:
        batch, default = next(iter(self.dims.items()))
        sizes = {**self.dims, batch: max(LARGE_BATCH, 4 * default), **self.large}
        return {symbol: max(size, self.least.get(symbol, 1)) for symbol, size in sizes.items()}

    def resized(self, **dims: int) -> "Case":
        """This case with other default sizes: a copy of the frozen record, whatever its class."""
        twin = copy.copy(self)
        object.__setattr__(twin, "dims", {**self.dims, **dims})
        return twin

    def shape(self, name: str, sizes: Mapping[str, int]) -> tuple[int, ...]:
        dims = self.shapes[name].partition("<")[0].split()
        return tuple(int(s) if s.isdigit() else sizes[s] for s in dims)

    def inputs(self, device="cpu", dtype=torch.float64, seed: int = 0, **dims: int) -> Tensors:
        """Standard-normal inputs, drawn in float64 on the CPU, then cast and moved; integer
        inputs uniform over their range. Every device and dtype sees the same values.
        ``dims`` overrides the case's sizes; ``seed`` picks another draw."""
        sizes = {**self.dims, **dims}
        gen = torch.Generator().manual_seed(self.seed + seed)
        drawn = {}
        for name in self.shapes:
            shape = self.shape(name, sizes)
            if name in self.indices:
                high = sizes[self.indices[name]]
                drawn[name] = torch.randint(high, shape, generator=gen).to(device)
            else:
                drawn[name] = torch.randn(shape, generator=gen, dtype=torch.float64).to(
                    device, dtype)
        return drawn

    def forward(self, inputs: Tensors) -> Tensors:
        """Every named value of the forward pass, computed on copies of the inputs
        (``handgrad.untouched``): a forward that writes into one changes nothing else."""
        args = {k: own_copy(t) for k, t in inputs.items() if k != self.grad_output}
        return self.module.forward(**args)

    def reference(self, inputs: Tensors, steps: bool = False) -> Tensors:
        """Autograd's gradients of ``output`` with respect to ``wrt``.

        With ``steps``, also with respect to every other named value of the forward pass
        that depends on them: what the chain rule passes through on its way to the inputs.
        """
        leaves = {k: t.detach().requires_grad_(k in self.wrt) for k, t in inputs.items()}
        values = {**self.forward(leaves)}
        out = values.pop(self.output)
        targets = {k: leaves[k] for k in self.wrt}
        if steps:
            targets |= {k: t for k, t in values.items()
                        if isinstance(t, torch.Tensor) and t.requires_grad}
        v = leaves[self.grad_output] if self.grad_output else None
        grads = torch.autograd.grad(out, list(targets.values()), grad_outputs=v)
        return dict(zip(targets, grads, strict=True))

    def manual(self, inputs: Tensors, form: str = "gradients", steps: bool = False) -> Tensors:
        """The hand-derived gradients, from detached copies of the inputs with autograd
        switched off: a backward that writes into one (``handgrad.untouched``) cannot change
        what autograd and the truth are then given.

        Keyed like ``reference``: the inputs in ``wrt``, and with ``steps`` every chain-rule
        step the backward names too.
        """
        return self._manual({k: own(t) for k, t in inputs.items()}, form, steps)

    def _manual(self, own: Tensors, form: str, steps: bool) -> Tensors:
        """``manual`` on inputs that are the backward's own to write into (``compare``'s)."""
        with torch.no_grad():
            grads = getattr(self.module, form)(**own)
        if steps or not set(self.wrt) <= set(grads):  # what it gave, for the verdict to
            return grads  # name what is missing
        return {k: grads[k] for k in self.wrt}

    def verdict(self, inputs: Tensors, form: str = "gradients", steps: bool = False,
                draw: str = "default draw") -> Verdict:
        """Judge the manual gradients (``form``; with ``steps`` every chain-rule step the
        backward names) against autograd's by the verdict."""
        inputs = {**inputs}
        device = next(iter(inputs.values())).device.type
        dtype = dtype_name(next(t for t in inputs.values() if t.is_floating_point()).dtype)
        label = f"{self.name} [{device}, {dtype}] {form}{', every step' * steps}, {draw}"
        named: dict[str, None] = {}  # the backward's names, in its order

        def manual(x: Tensors) -> Tensors:
            got = self._manual(x, form, steps)  # compare gave it copies
            named.update(dict.fromkeys(got))
            return got

        def autograd(x: Tensors) -> Tensors:  # in the backward's own order, then wrt
            want = self.reference(x, steps)
            order = [k for k in named if k in want] + [k for k in self.wrt if k not in named]
            return {k: want[k] for k in order}

        return compare(label, manual, autograd, inputs, lambda: self.holds(inputs))

    def holds(self, inputs: Tensors) -> bool:
        """Whether the forward in the inputs' dtype is finite wherever the float64 forward
        is: where a named value overflows only in the lower dtype, that dtype computed
        another function, and the float64 gradient is not its truth."""
        if all(not t.is_floating_point() or t.dtype == torch.float64 for t in inputs.values()):
            return True
        low, high = self.forward(inputs), self.forward(cast(inputs, torch.float64))
        return not any((~torch.isfinite(v) & torch.isfinite(high[k])).any()
                       for k, v in low.items() if isinstance(v, torch.Tensor)
                       and v.is_floating_point() and k in high)

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
