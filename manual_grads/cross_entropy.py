"""Cross-entropy with integer targets, as a language model's loss, backward by hand.

Forward, with shapes (N predictions over C classes; ``target`` holds one class id per
prediction, the next token's id in a language model)::

    row_max = max_c logits                    (N, 1)   logits (N, C)
    shifted = logits - row_max                (N, C)
    lse     = log(sum_c exp(shifted))         (N, 1)
    log_p   = shifted - lse                   (N, C)   log softmax
    picked  = log_p[n, target[n]]             (N,)     target (N,) ids in [0, C)
    loss    = -mean_n picked                  ()

This is ``F.cross_entropy(logits, target)``. ``softmax_cross_entropy`` is the same loss
with a probability row for a target; an id is the one-hot row, stored as one integer.
Shifting by ``row_max`` keeps every ``exp`` at most 1 (the log-sum-exp trick). ``target``
is an input but not a variable: nothing is differentiated with respect to an id.

Backward, read from the bottom up, with ``p = exp(shifted) / sum_c exp(shifted)`` the
softmax, and ``d_loss`` the loss's own upstream gradient (1 for the loss itself):

1. ``loss = -(1/N) sum_n picked[n]``: ``d_picked = -d_loss / N (N,)``.
2. ``picked[n] = log_p[n, target[n]]`` reads one entry a row, so the gradient goes back to
   that entry only: ``d_log_p[n, c] = d_picked[n]`` where ``c = target[n]``, else 0
   ``(N, C)``: ``d_picked`` times the one-hot row of ``target``.
3. ``log_p = shifted - lse``: ``shifted`` gets ``d_log_p``, and ``lse``, subtracted on
   every class, gets ``d_lse = -sum_c d_log_p = d_loss / N (N, 1)``.
4. ``lse = log sum_c exp(shifted)``: ``d lse / d shifted[c] = p[c]``, so
   ``d_shifted = d_log_p + d_lse * p (N, C)``.
5. ``shifted = logits - row_max``: ``d_logits = d_shifted``; ``row_max`` gets
   ``-sum_c d_shifted``, which is ``(d_loss / N) (sum_c p - 1) = 0`` in exact arithmetic
   (softmax ignores a shift of the row) and rounding noise in practice, so it is not named
   as a step (see ``softmax_cross_entropy``).

Closed form: ``d_logits = d_loss (p - onehot(target)) / N``. Every class is pushed down by
its probability, and the true class up by ``1 - p``: the gradient is zero only when the
model puts all its mass on the right token.

Numerics. ``p`` is taken from ``shifted`` as ``exp(shifted) / sum exp(shifted)``, as
autograd's chain through ``exp``, ``sum`` and ``log`` does; not as ``exp(log_p)``, which
carries ``log_p``'s rounding at the magnitude of ``log C`` into a relative error in
``p`` (four times autograd's error in float16 at 256 classes, see
``softmax_cross_entropy``).

At the target, step 4's ``d_log_p + d_lse p = d_lse (p - 1)`` cancels where the model is
confident (``p`` near 1) down to ``p``'s rounding: for logits ``[0, 10]`` and target 1,
``p - 1 = -4.54e-5`` comes out 0.05 % off in float32, 700 times autograd's error. So
``1 - p[target]`` is taken as what it equals, the other classes' share,
``sum_{c != target} p[c]``, a sum of positive terms with nothing to cancel. It sums the
probabilities, not the ``exp`` before dividing: that sum can pass float16's whole
numbers (it holds 2048 and 2050, not 2049), and with 2050 near-equal logits the hand
``d_lnf_beta`` of ``tiny_gpt`` came out 0 against a truth of 4.9e-7. (Autograd gets it
right another way: the row max's gradient, ``-sum_c d_shifted``, is zero in exact
arithmetic but in floating point it carries minus that cancellation's error, and lands on
the argmax, which is the target where ``p`` is near 1.) The one-hot row is written with
``where``, not a product, so that an infinite ``d_picked`` leaves the other classes at an
exact 0, as autograd's scatter does.
"""

import torch

from manual_grads._check import check

SHAPES = {"logits": "N C", "target": "N < C"}

Tensors = dict[str, torch.Tensor]


def forward(logits: torch.Tensor, target: torch.Tensor) -> Tensors:
    """The forward pass; returns every named value, ``loss`` last."""
    check(SHAPES, logits=logits, target=target)
    row_max = logits.amax(-1, keepdim=True)
    shifted = logits - row_max
    lse = shifted.exp().sum(-1, keepdim=True).log()
    log_p = shifted - lse
    picked = log_p.gather(-1, target.long().unsqueeze(-1)).squeeze(-1)
    return {"row_max": row_max, "shifted": shifted, "lse": lse, "log_p": log_p,
            "picked": picked, "loss": -picked.mean()}


def backward(f: Tensors, target: torch.Tensor, d_loss: torch.Tensor | float = 1.0,
             through_row_max: bool = False) -> Tensors:
    """The gradients given ``d_loss``, the upstream gradient of the loss (1 for the loss
    itself), ``f = forward(logits, target)`` and ``target``. Logits are ``(N, C)``: a
    model's ``(B, T, V)`` goes in as ``(B T, V)``. Returns ``d_picked``, ``d_log_p``,
    ``d_lse``, ``d_shifted`` and ``d_logits``, keyed by name, in backward order. Unchecked.

    With ``through_row_max``, ``d_logits`` also gets step 5's gradient of ``row_max``,
    ``-sum_c d_shifted`` on the row's largest entries (shared among ties, as ``amax``'s
    backward shares it): 0 in exact arithmetic, in floating point minus the rounding error
    of the row's sum, so that each row of ``d_logits`` sums to 0 as the exact one does, and
    as autograd's does, which takes that path. A model whose head is a matmul needs it:
    ``tiny_gpt``'s ``d_lnf = d_logits @ wte`` weighs every class by its row of ``wte``, and
    what all rows share cancels only if ``d_logits``'s rows sum to 0. Without it, with 25
    classes whose ``wte`` rows were all equal, float16's ``d_lnf`` was 1.2e-7 where
    autograd's is 0 and the truth -3e-20."""
    shifted = f["shifted"]
    n, c = shifted.shape
    onehot = target.unsqueeze(-1) == torch.arange(c, device=target.device)  # (N, C)
    e = shifted.exp()  # (N, C)  the softmax from the shifted logits, not exp(log_p)
    total = e.sum(-1, keepdim=True)  # (N, 1)
    p = e / total  # (N, C)
    rest = torch.where(onehot, 0, p).sum(-1, keepdim=True)  # (N, 1)  1 - p[target]
    d_loss = torch.as_tensor(d_loss, dtype=shifted.dtype, device=shifted.device)
    d_picked = (-d_loss / n).expand(n)  # (N,)    step 1: -mean
    d_log_p = torch.where(onehot, d_picked.unsqueeze(-1), 0)  # (N, C)  step 2: one entry a row
    d_lse = -d_log_p.sum(-1, keepdim=True)  # (N, 1)  step 3: lse is subtracted on every class
    d_shifted = torch.where(onehot, -d_lse * rest, d_lse * p)  # (N, C)  steps 3, 4 (Numerics)
    d_logits = d_shifted  # (N, C)  step 5: the shift by row_max passes back 0 ...
    if through_row_max:  # ... in exact arithmetic; its rounding error, where asked for
        top = f["shifted"] == 0  # (N, C)  logits == row_max: the row's largest entries
        d_logits = d_shifted - top * (d_shifted.sum(-1, keepdim=True) / top.sum(-1, keepdim=True))
    return {"picked": d_picked, "log_p": d_log_p, "lse": d_lse, "shifted": d_shifted,
            "logits": d_logits}


def gradients(logits: torch.Tensor, target: torch.Tensor) -> Tensors:
    """``d loss / d logits`` and every step before it, derived in the module docstring."""
    return backward(forward(logits, target), target)
