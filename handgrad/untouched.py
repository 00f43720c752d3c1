"""What a case's functions are given, they may not change.

A backward that clamps or cleans its inputs in place (``v.clamp_(-4, 4)``,
``x.nan_to_num_()``) changes what every later computation sees: run before autograd on
the same tensors, it hands autograd and the float64 truth the inputs it spoiled, and the
verdict then judges both sides on the wrong problem and passes them. So ``Case.manual`` and
``Case.forward`` hand the module copies (``own_copy``), and a check (``changes``) records
every input before a call and names the one the call changed: its values bit for bit (a
NaN is equal to itself), its sizes, strides and storage offset, or its storage.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import torch

_BITS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def own_copy(t):
    """``t``'s values in storage of their own, with ``t``'s sizes, strides and storage offset
    (so a non-contiguous or stride-0 input stays one). As it is: a non-tensor, a meta tensor
    (nothing to write), one that requires grad (autograd refuses an in-place write into a leaf,
    and a copy would cut the graph), a ``torch.func`` transform's wrapper, and anything while
    ``torch.compile`` traces (dynamo cannot trace the wrapper test, and a graph's inputs are
    the caller's own)."""
    if (not isinstance(t, torch.Tensor) or t.requires_grad or t.device.type == "meta"
            or torch.compiler.is_compiling()
            or torch._C._functorch.is_functorch_wrapped_tensor(t)):
        return t
    copy = torch.empty(0, dtype=t.dtype, device=t.device)
    return copy.set_(t.untyped_storage().clone(), t.storage_offset(), t.shape, t.stride())


def own(t):
    """``t`` detached, in storage of its own, laid out as ``t`` is (``own_copy``): a fresh
    leaf for autograd, or a backward's own to write into; anything else as it is, for the
    code it is given to refuse."""
    return own_copy(t.detach()) if isinstance(t, torch.Tensor) else t


def _raw(t: torch.Tensor) -> torch.Tensor:
    """The bytes of ``t``'s whole storage, as a tensor of their own."""
    return torch.empty(0, dtype=torch.uint8, device=t.device).set_(t.untyped_storage()).clone()


@dataclass(frozen=True)
class Record:
    """An input as it was: its layout, its storage, and a copy of every byte in it."""

    shape: tuple[int, ...]
    stride: tuple[int, ...]
    offset: int
    storage: int  # the storage's address
    raw: torch.Tensor
    values: torch.Tensor

    @classmethod
    def of(cls, t: torch.Tensor) -> "Record":
        return cls(tuple(t.shape), t.stride(), t.storage_offset(),
                   t.untyped_storage().data_ptr(), _raw(t), own_copy(t.detach()))

    def change(self, t: torch.Tensor) -> str | None:
        """How ``t`` differs from the record, in words; None where it is the same."""
        for what, was, now in (("shape", self.shape, tuple(t.shape)),
                               ("strides", self.stride, t.stride()),
                               ("storage offset", self.offset, t.storage_offset()),
                               ("storage", self.storage, t.untyped_storage().data_ptr())):
            if was != now:
                return f"its {what} went from {was} to {now}"
        bits = _BITS[t.element_size()]
        differ = self.values.view(bits) != t.detach().view(bits)
        if differ.any():
            index = tuple(int(i) for i in differ.nonzero()[0])
            return (f"its value at index {index} went from {self.values[index].item()} "
                    f"to {t[index].item()}")
        if not torch.equal(self.raw, _raw(t)):
            return "its storage outside the view was written"
        return None


def records(inputs: Mapping[str, object]) -> dict[str, Record]:
    return {k: Record.of(t) for k, t in inputs.items() if isinstance(t, torch.Tensor)}


def changes(before: Mapping[str, Record], inputs: Mapping[str, object]) -> dict[str, str]:
    """Each input that is not as ``before`` recorded it, with how it changed."""
    found = {k: record.change(inputs[k]) for k, record in before.items()}
    return {k: how for k, how in found.items() if how is not None}
