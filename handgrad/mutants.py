"""Generic mutants: wrong gradients that any case's check must reject.

Each is built from the right gradients and stands for a whole family of classic mistakes:
a factor lost or doubled (``2`` of a square, ``1/N`` of a mean), a sign, a gradient never
written, entries landing in the wrong place (a transpose, an index off by one), a sum over
the wrong axis. ``generic(case, dtype)`` lists those that apply to the case's gradients:
permuting needs two entries, a wrong axis needs an axis longer than one. A relative error
of 1e-3 is rejected in float32 and float64; bfloat16 and float16 round at 4e-3 and 5e-4,
so there it is not a mistake the verdict can see, and it is not tried.
"""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch

from handgrad.case import Case
from handgrad.verdict import Tensors

Change = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Mutant:
    """The right gradients with one of them changed."""

    label: str
    name: str  # the input whose gradient is changed
    change: Change

    def apply(self, right: Tensors, inputs: Tensors) -> Tensors:
        return {**right, self.name: self.change(right[self.name])}


def _permuted(g: torch.Tensor) -> torch.Tensor:
    return g.flatten().roll(1).reshape(g.shape)


def _averaged_over(axis: int) -> Change:
    return lambda g: g.mean(axis, keepdim=True).expand_as(g).clone()


def generic(case: Case, dtype: torch.dtype) -> list[Mutant]:
    """The generic mutants that apply to ``case``'s gradients in ``dtype``."""
    shapes = {name: case.shape(name, case.dims) for name in case.wrt}
    found = []
    for name, shape in shapes.items():
        found += [Mutant(f"d_{name} doubled", name, lambda g: 2 * g),
                  Mutant(f"d_{name} with its sign flipped", name, lambda g: -g),
                  Mutant(f"d_{name} dropped (zeros)", name, torch.zeros_like)]
        if dtype in (torch.float32, torch.float64):
            found.append(Mutant(f"d_{name} off by a relative 1e-3", name,
                                lambda g: g * (1 + 1e-3)))
        if torch.Size(shape).numel() > 1:
            found.append(Mutant(f"d_{name}'s entries shifted by one place", name, _permuted))
        found += [Mutant(f"d_{name} averaged over axis {axis} (a wrong reduction)", name,
                         _averaged_over(axis)) for axis, n in enumerate(shape) if n > 1]
    return found


class _Planted:
    """A case's module with some of its functions replaced; the rest as they are."""

    def __init__(self, module, replaced: dict):
        self._module, self._replaced = module, replaced
        self.__name__ = module.__name__

    def __getattr__(self, name: str):
        return self._replaced[name] if name in self._replaced else getattr(self._module, name)


def planted(case: Case, **replaced: Callable) -> Case:
    """``case`` with functions of its module replaced, e.g. ``planted(case,
    gradients=wrong)``: a wrong gradient to show that a check can fail."""
    return dataclasses.replace(case, module=_Planted(case.module, replaced))
