"""Two-layer MLP with ReLU and mean squared error, backward by hand (worked example D).

Forward, with shapes (N samples, D inputs, H hidden units)::

    l1   = x @ w1 + b1                  (N, H)   x (N, D), w1 (D, H), b1 (H,)
    l2   = relu(l1)                     (N, H)
    out  = l2 @ w2 + b2                 (N, 1)   w2 (H, 1), b2 (1,)
    diff = out.squeeze(-1) - target     (N,)     target (N,)
    loss = mean(diff ** 2)              ()

Backward, each step taking the gradient of its output and returning those of its inputs,
read from the bottom up:

1. ``loss = (1/N) sum_n diff[n]^2``, so ``d_diff = 2 diff / N (N,)``.
2. ``diff = out.squeeze(-1) - target``: squeeze only drops the unit axis, so its backward
   puts it back: ``d_out = d_diff.unsqueeze(-1) (N, 1)``. Forget the squeeze in the forward
   and ``(N, 1) - (N,)`` broadcasts to ``(N, N)``: the loss is then a mean over N^2 wrong
   pairs and every gradient is wrong, silently. ``forward`` refuses such shapes instead.
3. Linear layer ``out = inp @ w + b`` (here ``inp = l2, w = w2, b = b2``). Since
   ``out[n, o] = sum_i inp[n, i] w[i, o] + b[o]``:

   - ``d_inp[n, i] = sum_o d_out[n, o] w[i, o]``, that is ``d_inp = d_out @ w^T (N, I)``;
   - ``d_w[i, o] = sum_n inp[n, i] d_out[n, o]``, that is ``d_w = inp^T @ d_out (I, O)``;
   - ``b`` is added to every row, so ``d_b = d_out.sum(0) (O,)``.
4. ``l2 = relu(l1)``: the slope is 1 where ``l1 > 0`` and 0 elsewhere, so
   ``d_l1 = d_l2 * (l1 > 0) (N, H)``. At exactly ``l1 = 0`` the slope is taken as 0, as
   ``torch.relu`` does (strict ``>``, not ``>=``; ``clamp_min(0)`` would take 1 and
   ``torch.maximum(l1, 0)`` 0.5). The code writes the product the way torch's own ReLU
   backward does, ``where(l1 <= 0, 0, d_l2)``: the same numbers for every finite input,
   and the same NaNs otherwise (a unit that is off passes back an exact 0 even when a NaN
   arrives from above, where ``NaN * 0`` would be NaN; a NaN in ``l1`` lets the gradient
   through).
5. Linear layer again, ``l1 = x @ w1 + b1``, by step 3: ``d_x, d_w1, d_b1``.

The broadcasting form. The article writes step 3 without matmul:
``d_inp = (d_out.unsqueeze(1) * w).sum(-1)`` and
``d_w = (inp.unsqueeze(-1) * d_out.unsqueeze(1)).sum(0)``. Each builds the full
``(N, I, O)`` tensor of products ``inp[n, i] d_out[n, o]`` (or ``d_out[n, o] w[i, o]``)
and then sums one axis away: exactly the sums in step 3, written out term by term. A
matmul computes the same sums without storing the products, so the two forms agree to
rounding while the broadcast form needs ``N * I * O`` numbers of memory: 1000 x 784 x 50
float32 is about 157 MB for the first layer. ``gradients_broadcast`` keeps it, verified
like the fast form.
"""

from collections.abc import Callable
from functools import partial

import torch

from manual_grads._check import check

SHAPES = {"x": "N D", "w1": "D H", "b1": "H", "w2": "H 1", "b2": "1", "target": "N"}

Tensors = dict[str, torch.Tensor]
LinearBackward = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]
]


def forward(x, w1, b1, w2, b2, target) -> Tensors:
    """The forward pass; returns every named value, ``loss`` last."""
    check(SHAPES, x=x, w1=w1, b1=b1, w2=w2, b2=b2, target=target)
    l1 = x @ w1 + b1
    l2 = torch.relu(l1)
    out = l2 @ w2 + b2
    diff = out.squeeze(-1) - target
    return {"l1": l1, "l2": l2, "out": out, "diff": diff, "loss": (diff**2).mean()}


def linear_backward(inp, w, d_out):
    """Step 3 with matmuls: gradients of ``inp @ w + b`` given ``d_out (N, O)``."""
    d_inp = d_out @ w.T  # (N, I)
    d_w = inp.T @ d_out  # (I, O)
    d_b = d_out.sum(0)  # (O,)
    return d_inp, d_w, d_b


def linear_backward_broadcast(inp, w, d_out):
    """Step 3 as the article writes it: broadcast to ``(N, I, O)``, then sum an axis."""
    d_inp = (d_out.unsqueeze(1) * w).sum(-1)  # (N, 1, O) * (I, O) -> (N, I, O) -> (N, I)
    d_w = (inp.unsqueeze(-1) * d_out.unsqueeze(1)).sum(0)  # (N, I, 1) * (N, 1, O) -> (I, O)
    d_b = d_out.sum(0)  # (O,)
    return d_inp, d_w, d_b


def _backward(linear: LinearBackward, x, w1, b1, w2, b2, target) -> Tensors:
    f = forward(x, w1, b1, w2, b2, target)
    d_diff = 2 * f["diff"] / f["diff"].shape[0]  # (N,)    step 1: mean of squares
    d_out = d_diff.unsqueeze(-1)  # (N, 1)  step 2: squeeze
    d_l2, d_w2, d_b2 = linear(f["l2"], w2, d_out)  # (N, H), (H, 1), (1,)  step 3
    d_l1 = torch.where(f["l1"] <= 0, 0, d_l2)  # (N, H)  step 4: relu, slope 0 at the kink
    d_x, d_w1, d_b1 = linear(x, w1, d_l1)  # (N, D), (D, H), (H,)  step 5
    return {"diff": d_diff, "out": d_out, "l2": d_l2, "w2": d_w2, "b2": d_b2,
            "l1": d_l1, "x": d_x, "w1": d_w1, "b1": d_b1}


def gradients(x, w1, b1, w2, b2, target) -> Tensors:
    """Gradients of the loss for ``x, w1, b1, w2, b2``, linear steps as matmuls."""
    return _backward(linear_backward, x, w1, b1, w2, b2, target)


def gradients_broadcast(x, w1, b1, w2, b2, target) -> Tensors:
    """The same gradients with the article's broadcasting linear backward (slow, big)."""
    return _backward(linear_backward_broadcast, x, w1, b1, w2, b2, target)


def gradient_buffers(x, w1, b1, w2, b2, target) -> Tensors:
    """Uninitialised tensors for ``gradients_into`` to write into: allocate them once.

    One per gradient, shaped like its input, plus ``d_out (N, 1)`` and ``d_l1 (N, H)`` for
    the steps between. ``d_w1`` is laid out column-major (the transpose of an ``(H, D)``
    tensor), so that its matmul runs as ``(d_l1^T x)^T``: the same sums, in the order the
    CPU's matmul is fastest at (1.5 to 2.3 times as fast as ``x^T d_l1`` written row-major,
    on one core at N = 1000 to 10000).
    """
    sizes = check(SHAPES, x=x, w1=w1, b1=b1, w2=w2, b2=b2, target=target)
    n, d, h = sizes["N"], sizes["D"], sizes["H"]
    new = partial(torch.empty, dtype=x.dtype, device=x.device)
    return {"x": new(n, d), "w1": new(h, d).T, "b1": new(h), "w2": new(h, 1), "b2": new(1),
            "d_out": new(n, 1), "d_l1": new(n, h)}


def gradients_into(x, w1, b1, w2, b2, target, buffers: Tensors | None = None) -> Tensors:
    """``gradients`` again, every gradient written with ``out=`` into ``buffers``.

    ``buffers`` comes from ``gradient_buffers`` (called here when it is ``None``). Allocate
    it once and pass it to every call, and no call allocates an ``(N, D)`` gradient: at
    N = 100000, ``d_x`` alone is 313 MB of fresh memory a call. The gradients returned are
    the buffers themselves, overwritten by the next call. ``forward`` still allocates the
    activations, ``(N, H)``: 16 times smaller than ``d_x``.
    """
    g = gradient_buffers(x, w1, b1, w2, b2, target) if buffers is None else buffers
    f = forward(x, w1, b1, w2, b2, target)
    n = x.shape[0]
    d_out = torch.mul(f["diff"].unsqueeze(-1), 2, out=g["d_out"]).div_(n)  # (N, 1)  steps 1-2
    d_l2 = torch.mm(d_out, w2.T, out=g["d_l1"])  # (N, H)  step 3: d_out @ w2^T
    torch.mm(f["l2"].T, d_out, out=g["w2"])  # (H, 1)  step 3: d_w2 = l2^T @ d_out
    torch.sum(d_out, 0, out=g["b2"])  # (1,)    step 3: d_b2
    d_l1 = d_l2.masked_fill_(f["l1"] <= 0, 0)  # (N, H)  step 4: relu, in place over d_l2
    torch.mm(d_l1, w1.T, out=g["x"])  # (N, D)  step 5: d_x = d_l1 @ w1^T
    torch.mm(x.T, d_l1, out=g["w1"])  # (D, H)  step 5: d_w1 = x^T @ d_l1, column-major
    torch.sum(d_l1, 0, out=g["b1"])  # (H,)    step 5: d_b1
    return {name: g[name] for name in ("x", "w1", "b1", "w2", "b2")}
