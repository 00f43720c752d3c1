"""Causal self-attention at a small GPT's sizes, in three forms, for the attention
benchmark and the memory table.

8 heads of 32 channels (width 256), ``BATCH`` = 2 sequences of T = 256 or 1024 positions,
float32. The inputs are the case's draw at these sizes, with both weights divided by the
square root of their fan-in (16), the usual scale of a layer's initial weights: the
scores then spread about 2 (their standard deviation), and a row's largest ``p`` is 0.09
on average. Drawn at a spread of 1, the weights make scores of spread 256: every softmax
row is nearly one-hot (its largest ``p`` 0.99 on average) and 99% of the exponentials
underflow to 0, where this CPU's ``exp`` takes three times as long. That measures an
underflow, not attention.

Each form takes the inputs and returns the call that is timed, forward and backward:

- ``autograd``: the case's forward on inputs that require grad, keeping only ``y`` (a
  model's forward drops its other values too), then ``torch.autograd.grad(y, wrt, v)``:
  autograd's graph holds what it saved, ``masked``, ``exp(shifted)`` and ``p``.
- ``compiled``: the same with the forward ``torch.compile``d (``benchmarks.compiled``).
- ``manual``: ``gradients``, the hand backward from every value of the full forward.
- ``recompute``: ``gradients_recompute``, which keeps ``q, k, val`` and recomputes the
  softmax in the backward, a head and a block of sequences at a time.
"""

from collections.abc import Callable

import torch

from benchmarks.compiled import compiled_reference
from cases.causal_self_attention import CASE

Tensors = dict[str, torch.Tensor]

SIZES = (256, 1024)  # T, the context
SIZE = "T"
BATCH, HEADS, HEAD_SIZE = 2, 8, 32
WIDTH = HEADS * HEAD_SIZE
DTYPE = torch.float32


def draw(device: str, t: int) -> Tensors:
    drawn = CASE.inputs(device, DTYPE, B=BATCH, T=t, C=WIDTH, H=HEADS, D=HEAD_SIZE)
    for name in ("w_qkv", "w_proj"):
        drawn[name] = drawn[name] / WIDTH**0.5  # both have fan-in C = H D = 256
    return drawn


def scale(t: int) -> tuple[str, int]:
    """What a row of the memory table is measured against: one ``(B, H, T, T)`` tensor."""
    return "one (B, H, T, T) tensor, for scale", BATCH * HEADS * t * t * DTYPE.itemsize


def too_big(form: str, t: int) -> None:
    """Every form runs at every size here."""
    return None


def autograd(inputs: Tensors) -> Callable[[], Tensors]:
    def call() -> Tensors:
        leaves = {k: t.detach().requires_grad_(k in CASE.wrt) for k, t in inputs.items()}
        y = CASE.forward(leaves)[CASE.output]
        grads = torch.autograd.grad(y, [leaves[k] for k in CASE.wrt], inputs[CASE.grad_output])
        return dict(zip(CASE.wrt, grads, strict=True))
    return call


def compiled(inputs: Tensors) -> Callable[[], Tensors]:
    return compiled_reference(CASE, inputs)


def manual(inputs: Tensors) -> Callable[[], Tensors]:
    return lambda: CASE.manual(inputs)


def recompute(inputs: Tensors) -> Callable[[], Tensors]:
    return lambda: CASE.manual(inputs, "gradients_recompute")


FORMS: dict[str, Callable[[Tensors], Callable[[], Tensors]]] = {
    "autograd": autograd,
    "compiled": compiled,
    "manual": manual,
    "recompute": recompute,
}
BASELINES = ("autograd", "compiled")  # what every form's time is divided by
MEASURED = tuple(FORMS)  # forms with a memory figure
