"""One training step of a GPT (forward, backward, the AdamW update) by hand and by
autograd with ``torch.optim.AdamW``, at two widths, for the GPT benchmark and the memory
table.

- C = 32: the tiny GPT at the case's sizes: vocabulary 64, context T = 16, 4 heads of 8
  channels, a hidden layer of 128, 2 blocks, 4 sequences.
- C = 256: a wider one: vocabulary 512, context T = 256, 8 heads of 32, a hidden layer of
  1024, 2 blocks, 4 sequences.

The parameters are GPT-2's initialisation and the tokens random (``gpt2_init``), float32.
Each form takes them and returns the call that is timed: one step from those parameters
with a fresh optimiser (the moments at 0: the first step), returning the loss and every
parameter after the step, which the verdict then judges against ``CASE.reference``,
autograd's step:

- ``autograd``: the case's forward on copies of the parameters that require grad (the
  copies let every call start from the same parameters; they are 0.3% of a call at
  C = 256), ``loss.backward()``, ``torch.optim.AdamW(...).step()``;
- ``manual``: ``tiny_gpt.loss_and_gradients`` and ``adamw.adamw_step``: no autograd.
"""

from collections.abc import Callable
from typing import NamedTuple

import torch

from cases.tiny_gpt import CASE as TINY
from cases.tiny_gpt import HYPER, gpt2_init
from manual_grads import tiny_gpt
from manual_grads.adamw import adamw_step

Tensors = dict[str, torch.Tensor]

SIZES = (32, 256)  # C, the width
SIZE = "C"
DTYPE = torch.float32
WIDE = {"C": 256, "H": 8, "D": 32, "F": 1024, "T": 256, "V": 512, "L": 2, "B": 4}


def dims(c: int) -> dict[str, int]:
    return dict(TINY.dims) if c == TINY.dims["C"] else WIDE


def draw(device: str, c: int) -> Tensors:
    """The inputs, after one backward and one AdamW step on a two-entry tensor: their first
    use in a process loads code and takes 79 MiB that no step uses, which the memory table
    would otherwise count as autograd's."""
    warm = torch.zeros(2, device=device, requires_grad=True)
    (2 * warm).sum().backward()
    torch.optim.AdamW([warm], **HYPER).step()
    return gpt2_init(device, DTYPE, **dims(c))


def scale(c: int) -> tuple[str, int]:
    """What a row of the memory table is measured against: the parameters."""
    sizes = dims(c)
    count = sum(torch.Size(int(s) if s.isdigit() else sizes[s] for s in
                           tiny_gpt.SHAPES[name].split()).numel()
                for name in tiny_gpt.PARAMETERS)
    return "the parameters, for scale", count * DTYPE.itemsize


def too_big(form: str, c: int) -> None:
    """Every form runs at every size here."""
    return None


def autograd(inputs: Tensors) -> Callable[[], Tensors]:
    def call() -> Tensors:
        leaves = {k: inputs[k].detach().clone().requires_grad_() for k in tiny_gpt.PARAMETERS}
        optimiser = torch.optim.AdamW(leaves.values(), **HYPER)
        loss = TINY.forward({**inputs, **leaves})["loss"]
        loss.backward()
        optimiser.step()
        return {"loss": loss.detach(), **{k: p.detach() for k, p in leaves.items()}}
    return call


def manual(inputs: Tensors) -> Callable[[], Tensors]:
    def call() -> Tensors:
        loss, grads = tiny_gpt.loss_and_gradients(**inputs)
        params = {k: inputs[k] for k in tiny_gpt.PARAMETERS}
        new, _ = adamw_step(params, {k: grads[k] for k in params}, None, **HYPER)
        return {"loss": loss, **new}
    return call


class Step(NamedTuple):
    """What ``sweep`` needs of a case: a name for the groups, and the reference."""

    name: str
    reference: Callable[[Tensors], Tensors]


CASE = Step("gpt_training_step", lambda inputs: autograd(inputs)())
FORMS: dict[str, Callable[[Tensors], Callable[[], Tensors]]] = {
    "autograd": autograd,
    "manual": manual,
}
BASELINES = ("autograd",)  # what every form's time is divided by
MEASURED = tuple(FORMS)  # forms with a memory figure
