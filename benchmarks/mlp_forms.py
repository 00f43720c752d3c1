"""The MLP's forward and backward in five forms, for the scaling sweep and the memory table.

Each form takes the inputs, does its set-up once (buffers, operands) and returns the call
that is timed: forward and every gradient, or for the floor its matmuls alone.

- ``autograd``: ``case.reference``, torch's graph and backward.
- ``compiled``: the same with the forward ``torch.compile``d (``benchmarks.compiled``).
- ``manual``: ``case.manual``, the hand-derived backward with matmuls (``gradients``).
- ``buffered``: ``gradients_into``, the same, into buffers allocated once, before timing.
- ``broadcast``: the article's broadcasting backward (``gradients_broadcast``), which
  builds ``(N, D, H)`` tensors of products; run only where one fits in ``BROADCAST_LIMIT``.
- ``floor``: the GEMM floor, the six matmuls any backward of this MLP must do and nothing
  else: forward ``x @ w1`` and ``l2 @ w2``; backward ``d_out @ w2^T``, ``l2^T @ d_out``,
  ``d_l1 @ w1^T`` and ``x^T @ d_l1``. Its operands are the true activations and upstream
  gradients, computed once beforehand, so its products are checked against autograd's
  gradients too; its outputs are buffers allocated once, laid out as in ``buffered``.
"""

from collections.abc import Callable

import torch

from benchmarks.compiled import compiled_reference
from cases.mlp_relu_mse import ARTICLE_DIMS, CASE
from manual_grads import mlp_relu_mse as mlp

Tensors = dict[str, torch.Tensor]

SIZES = (100, 1_000, 10_000, 100_000)
SIZE = "N"
DTYPE = torch.float32  # what training runs in, and what the figures are for
BROADCAST_LIMIT = 2 * 10**9  # bytes of one (N, D, H) product tensor of the broadcast form


def draw(device: str, n: int) -> Tensors:
    return CASE.inputs(device, DTYPE, **{**ARTICLE_DIMS, "N": n})


def scale(n: int) -> tuple[str, int]:
    """What a row of the memory table is measured against: ``x``, the input."""
    return "`x`, the input, for scale", n * ARTICLE_DIMS["D"] * DTYPE.itemsize


def autograd(inputs: Tensors) -> Callable[[], Tensors]:
    return lambda: CASE.reference(inputs)


def compiled(inputs: Tensors) -> Callable[[], Tensors]:
    return compiled_reference(CASE, inputs)


def manual(inputs: Tensors) -> Callable[[], Tensors]:
    return lambda: CASE.manual(inputs)


def buffered(inputs: Tensors) -> Callable[[], Tensors]:
    buffers = mlp.gradient_buffers(**inputs)
    return lambda: mlp.gradients_into(**inputs, buffers=buffers)


def broadcast(inputs: Tensors) -> Callable[[], Tensors]:
    return lambda: CASE.manual(inputs, "gradients_broadcast")


def floor(inputs: Tensors) -> Callable[[], Tensors]:
    x, w1, w2 = inputs["x"], inputs["w1"], inputs["w2"]
    operands = mlp.gradient_buffers(**inputs)
    mlp.gradients_into(**inputs, buffers=operands)  # leaves the true d_out and d_l1 there
    l2, d_out, d_l1 = mlp.forward(**inputs)["l2"], operands["d_out"], operands["d_l1"]
    l1, out, d_l2 = torch.empty_like(l2), torch.empty_like(d_out), torch.empty_like(l2)
    grads = mlp.gradient_buffers(**inputs)  # d_x, d_w2 and d_w1 (column-major) are used

    def six_matmuls() -> Tensors:
        torch.mm(x, w1, out=l1)  # forward: x @ w1 (N, H)
        torch.mm(l2, w2, out=out)  # forward: l2 @ w2 (N, 1)
        torch.mm(d_out, w2.T, out=d_l2)  # backward: d_l2 = d_out @ w2^T (N, H)
        torch.mm(l2.T, d_out, out=grads["w2"])  # backward: d_w2 = l2^T @ d_out (H, 1)
        torch.mm(d_l1, w1.T, out=grads["x"])  # backward: d_x = d_l1 @ w1^T (N, D)
        torch.mm(x.T, d_l1, out=grads["w1"])  # backward: d_w1 = x^T @ d_l1 (D, H)
        return {name: grads[name] for name in ("x", "w1", "w2")}

    return six_matmuls


FORMS: dict[str, Callable[[Tensors], Callable[[], Tensors]]] = {
    "autograd": autograd,
    "compiled": compiled,
    "manual": manual,
    "buffered": buffered,
    "broadcast": broadcast,
    "floor": floor,
}
BASELINES = ("autograd", "compiled", "floor")  # what every form's time is divided by, or
# divides
PARTIAL = ("floor",)  # its three products are some of the gradients, judged as such
MEASURED = ("autograd", "manual", "buffered", "broadcast")  # the floor has no memory figure


def too_big(form: str, n: int, dtype: torch.dtype = DTYPE) -> str | None:
    """Why ``form`` does not run at batch size ``n``, or ``None`` where it does."""
    size = n * ARTICLE_DIMS["D"] * ARTICLE_DIMS["H"] * dtype.itemsize
    if form == "broadcast" and size > BROADCAST_LIMIT:
        return (f"broadcast form at N={n}: its (N, D, H) product tensor is {size / 1e9:.1f} GB,"
                f" over the {BROADCAST_LIMIT / 1e9:.0f} GB limit")
    return None
