"""AdamW, the update GPT-2 trains with, by hand: ``torch.optim.AdamW`` in plain algebra.

Adam keeps two running averages a parameter: ``m`` of its gradient ``g`` and ``v`` of
``g^2``, elementwise, and steps along ``m / sqrt(v)``. Step ``t = 1, 2, ...`` from
``m = v = 0``, with learning rate ``lr``, decay rates ``beta1, beta2``, ``eps`` and the
weight decay ``wd``::

    p  <- p (1 - lr wd)                     decoupled weight decay
    m  <- beta1 m + (1 - beta1) g           first moment: a running mean of g
    v  <- beta2 v + (1 - beta2) g^2         second moment: a running mean of g^2
    m^ =  m / (1 - beta1^t)                 bias correction
    v^ =  v / (1 - beta2^t)
    p  <- p - lr m^ / (sqrt(v^) + eps)

Why each line.

- The moments. Unrolled from ``m_0 = 0``, ``m_t = (1 - beta1) sum_{s<=t} beta1^(t-s) g_s``:
  an average of the recent gradients whose weights fall off by ``beta1`` a step (0.9: the
  last ten or so count), so the noise of one batch averages out. ``v_t`` likewise, over
  ``g^2`` with ``beta2 = 0.999``, about the last thousand.
- The bias correction. The weights of that sum add up to ``1 - beta1^t``, not 1: started
  at 0, ``m`` is too small by that factor early on (at ``t = 1``, ``m = 0.1 g``). Dividing by
  it makes ``m^`` an average with weights summing to 1: if every ``g_s`` were the same
  ``g``, ``m^ = g`` exactly, at every step. The same for ``v``.
- The step. ``m^ / sqrt(v^)`` is about the gradient's sign where ``g`` is steady
  (at ``t = 1`` it is ``g / |g|``, so the first step moves every entry by ``lr``), and
  smaller where ``g`` flips sign from step to step, for ``m`` averages out and ``v`` does
  not: each entry gets its own step size, whatever the scale of its gradient. ``eps``
  keeps the division finite where ``v`` is 0.
- The weight decay. L2 regularisation adds ``wd p`` to ``g``, and Adam would then divide
  it by ``sqrt(v^)`` with the rest, so parameters with large gradients would be decayed
  less. AdamW takes the decay out of the gradient ("decoupled", Loshchilov and Hutter):
  every parameter shrinks by the same factor ``1 - lr wd`` a step, first, as
  ``torch.optim.AdamW`` does.

Numerics. ``adamw_step`` takes these lines in torch's order and with torch's operations,
so that in every dtype it rounds as ``torch.optim.AdamW`` does on the CPU (its
single-tensor path): ``m`` by ``lerp``, ``m + (1 - beta1) (g - m)``, the same number in
exact arithmetic; ``v`` by ``addcmul`` onto ``beta2 v``; the step as ``addcdiv`` with
``-lr / (1 - beta1^t)`` over ``sqrt(v) / sqrt(1 - beta2^t) + eps``, which is
``lr m^ / (sqrt(v^) + eps)``. The moments are kept in the parameter's dtype, as torch
keeps them; the corrections are Python floats (double precision), as torch computes them
from its step count.
"""

from collections.abc import Mapping

import torch

Tensors = dict[str, torch.Tensor]
DEFAULTS = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-2}


def adamw_state(params: Mapping[str, torch.Tensor]) -> dict:
    """The state before the first step: ``t = 0`` and zero moments, per parameter."""
    return {"t": 0, "m": {k: torch.zeros_like(p) for k, p in params.items()},
            "v": {k: torch.zeros_like(p) for k, p in params.items()}}


def _checked(params, grads, state, lr, betas, eps, weight_decay) -> None:
    if params.keys() != grads.keys():
        raise ValueError(f"grads: keys {sorted(grads)} differ from params' {sorted(params)}")
    for name, value, ok, want in (
            ("lr", lr, lr > 0, "a positive learning rate"),
            ("betas", betas, len(betas) == 2 and all(0 <= b < 1 for b in betas),
             "two decay rates in [0, 1)"),
            ("eps", eps, eps >= 0, "eps >= 0"),
            ("weight_decay", weight_decay, weight_decay >= 0, "weight_decay >= 0")):
        if not ok:
            raise ValueError(f"{name}: expected {want}, got {value}")
    for name, p in params.items():
        want = (tuple(p.shape), p.dtype)
        for what, t in (("grads", grads[name]), ("state['m']", state["m"].get(name)),
                        ("state['v']", state["v"].get(name))):
            if not isinstance(t, torch.Tensor) or (tuple(t.shape), t.dtype) != want:
                got = (tuple(t.shape), t.dtype) if isinstance(t, torch.Tensor) \
                    else type(t).__name__
                raise ValueError(f"{what}[{name!r}]: expected {want} like params[{name!r}], "
                                 f"got {got}")


def adamw_step(params: Mapping[str, torch.Tensor], grads: Mapping[str, torch.Tensor],
               state: dict | None = None, lr: float = DEFAULTS["lr"],
               betas: tuple[float, float] = DEFAULTS["betas"], eps: float = DEFAULTS["eps"],
               weight_decay: float = DEFAULTS["weight_decay"]) -> tuple[Tensors, dict]:
    """One AdamW step for each parameter; returns new parameters and the new state (step
    count and moments), leaving the given ones as they were. ``state`` is ``None`` before
    the first step (``adamw_state``). The defaults are ``torch.optim.AdamW``'s."""
    state = adamw_state(params) if state is None else state
    _checked(params, grads, state, lr, betas, eps, weight_decay)
    beta1, beta2 = betas
    t = state["t"] + 1
    step_size = lr / (1 - beta1**t)  # lr / (1 - beta1^t): m's bias correction
    root = (1 - beta2**t) ** 0.5  # sqrt(1 - beta2^t): v's, under the root
    new, m, v = {}, {}, {}
    for name, p in params.items():
        g = grads[name]
        decayed = p * (1 - lr * weight_decay)  # p (1 - lr wd)
        m[name] = torch.lerp(state["m"][name], g, 1 - beta1)  # beta1 m + (1 - beta1) g
        v[name] = torch.addcmul(state["v"][name] * beta2, g, g, value=1 - beta2)
        denom = v[name].sqrt() / root + eps  # sqrt(v^) + eps
        new[name] = torch.addcdiv(decayed, m[name], denom, value=-step_size)
    return new, {"t": t, "m": m, "v": v}
