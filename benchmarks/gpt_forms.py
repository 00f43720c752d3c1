"""One training step of a GPT (forward, backward, the AdamW update) by hand and by
autograd with ``torch.optim.AdamW``, eager and compiled, for the GPT benchmark and the
memory table; here at the case's width, ``gpt_context_forms`` at width 256 and three
contexts.

- C = 32: the tiny GPT at the case's sizes: vocabulary 64, context T = 16, 4 heads of 8
  channels, a hidden layer of 128, 2 blocks, 4 sequences.
- ``WIDE``: vocabulary 512, width 256, 8 heads of 32, a hidden layer of 1024, 2 blocks, 4
  sequences, context T = 256 (and 512, 1024 in ``gpt_context_forms``).

The parameters are GPT-2's initialisation and the tokens random (``gpt2_init``), float32.
Each form takes them and returns the call that is timed: one step from those parameters
with a fresh optimiser (the moments at 0: the first step), returning the loss and every
parameter after the step, which the verdict then judges against ``CASE.reference``,
autograd's step:

- ``autograd``: the case's forward on copies of the parameters that require grad (the
  copies let every call start from the same parameters; they are 0.3% of a call at
  C = 256), ``loss.backward()``, ``torch.optim.AdamW(...).step()``;
- ``compiled``: the autograd step compiled whole (``benchmarks.compiled.compiled_step``):
  forward, ``loss.backward()`` and the optimiser's step in one ``torch.compile``d function;
- ``manual``: ``tiny_gpt.loss_and_gradients`` (the teaching form, every chain-rule step
  returned) and ``adamw.adamw_step``: no autograd;
- ``train``: ``tiny_gpt.loss_and_gradients_train`` (the training form: the parameters'
  gradients alone, the lean attention, into buffers made once before timing) and
  ``adamw.adamw_step``: no autograd;
- ``train_compiled``: that step (without the buffers: inductor plans its own) compiled
  whole by ``torch.compile`` (``benchmarks.compiled.compiled_call``), the same hand
  gradient with its elementwise passes fused, against ``compiled``: both compiled.
"""

from collections.abc import Callable
from typing import NamedTuple

import torch

from benchmarks.compiled import compiled_call, compiled_step
from cases.tiny_gpt import CASE as TINY
from cases.tiny_gpt import HYPER, gpt2_init
from manual_grads import tiny_gpt
from manual_grads.adamw import adamw_step

Tensors = dict[str, torch.Tensor]

SIZES = (32,)  # C, the width; width 256 is gpt_context_forms''
SIZE = "C"
DTYPE = torch.float32
WIDE = {"C": 256, "H": 8, "D": 32, "F": 1024, "T": 256, "V": 512, "L": 2, "B": 4}


def dims(c: int) -> dict[str, int]:
    return dict(TINY.dims) if c == TINY.dims["C"] else WIDE


def draw_at(device: str, sizes: dict[str, int]) -> Tensors:
    """The inputs, after one backward and one AdamW step on a two-entry tensor: their first
    use in a process loads code and takes 79 MiB that no step uses, which the memory table
    would otherwise count as autograd's."""
    warm = torch.zeros(2, device=device, requires_grad=True)
    (2 * warm).sum().backward()
    torch.optim.AdamW([warm], **HYPER).step()
    return gpt2_init(device, DTYPE, **sizes)


def draw(device: str, c: int) -> Tensors:
    return draw_at(device, dims(c))


def parameter_bytes(sizes: dict[str, int]) -> tuple[str, int]:
    """What a row of the memory table is measured against: the parameters."""
    count = sum(torch.Size(int(s) if s.isdigit() else sizes[s] for s in
                           tiny_gpt.SHAPES[name].split()).numel()
                for name in tiny_gpt.PARAMETERS)
    return "the parameters, for scale", count * DTYPE.itemsize


def scale(c: int) -> tuple[str, int]:
    return parameter_bytes(dims(c))


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


def compiled(inputs: Tensors) -> Callable[[], Tensors]:
    params = {k: inputs[k] for k in tiny_gpt.PARAMETERS}
    return compiled_step(lambda leaves: TINY.forward({**inputs, **leaves})["loss"], params,
                         HYPER, "the GPT training step")


def manual(inputs: Tensors) -> Callable[[], Tensors]:
    def call() -> Tensors:
        loss, grads = tiny_gpt.loss_and_gradients(**inputs)
        params = {k: inputs[k] for k in tiny_gpt.PARAMETERS}
        new, _ = adamw_step(params, {k: grads[k] for k in params}, None, **HYPER)
        return {"loss": loss, **new}
    return call


def _hand_step(inputs: Tensors, into: Tensors | None = None) -> Callable[[], Tensors]:
    """The training form's gradients, then ``adamw_step``; ``into``: buffers for them."""
    params = {k: inputs[k] for k in tiny_gpt.PARAMETERS}

    def call() -> Tensors:
        loss, grads = tiny_gpt.loss_and_gradients_train(**inputs, into=into)
        new, _ = adamw_step(params, grads, None, **HYPER)
        return {"loss": loss, **new}
    return call


def train(inputs: Tensors) -> Callable[[], Tensors]:
    into = tiny_gpt.loss_and_gradients_train(**inputs)[1]  # the buffers, reused every step
    return _hand_step(inputs, into)


def train_compiled(inputs: Tensors) -> Callable[[], Tensors]:
    return compiled_call(_hand_step(inputs), "the hand GPT training step")


class Step(NamedTuple):
    """What ``sweep`` needs of a case: a name for the groups, and the reference."""

    name: str
    reference: Callable[[Tensors], Tensors]


CASE = Step("gpt_training_step", lambda inputs: autograd(inputs)())
FORMS: dict[str, Callable[[Tensors], Callable[[], Tensors]]] = {
    "autograd": autograd,
    "compiled": compiled,
    "manual": manual,
    "train": train,
    "train_compiled": train_compiled,
}
BASELINES = ("autograd", "compiled")  # what every form's time is divided by
MEASURED = tuple(FORMS)  # forms with a memory figure
