"""Opinions other than autograd's reverse mode on each hand-derived gradient.

- finite differences: ``gradcheck`` on a function whose backward *is* the manual gradient
  (``Case.through_manual``), so autograd's own derivative is out of the loop;
- forward mode: the adjoint identity ``<v, J u> = <J^T v, u>``, with ``J u`` from
  ``torch.func.jvp`` and ``J^T v`` from the manual gradient;
- second order: hand Hessians against ``torch.func.hessian``;
- training: the manual gradient used by ``torch.optim.SGD`` (through the adapter) and by
  the hand SGD step, against plain autograd, step by step.

The first three run in float64, where rounding is far below what they measure.
"""

import importlib

import pytest
import torch

from cases import CASES
from manual_grads.sgd_linear_regression import sgd_step

F64 = torch.float64


def gradcheck_manual(case, inputs, fast_mode):
    wrt = [inputs[k].requires_grad_() for k in case.wrt]
    return torch.autograd.gradcheck(case.function(inputs, "manual"), wrt, fast_mode=fast_mode)


def test_gradcheck_of_the_manual_gradient(case, device):
    """Every entry of the Jacobian by finite differences, on small sizes."""
    assert gradcheck_manual(case, case.inputs(device, F64, **case.small_dims), fast_mode=False)


def test_gradcheck_fast_mode_at_the_case_sizes(case, device, monkeypatch):
    """One random projection of the Jacobian, at the case's own (the article's) sizes.

    On a mismatch, fast mode recomputes both full Jacobians in slow mode for its message;
    for the MLP's x (1000 x 784) that runs out of memory, so that step is replaced by a note.
    """
    monkeypatch.setattr(importlib.import_module("torch.autograd.gradcheck"),
                        "_run_slow_mode_and_get_error",
                        lambda *args, **kwargs: "\n(slow-mode Jacobians not recomputed here)")
    assert gradcheck_manual(case, case.inputs(device, F64), fast_mode=True)


def test_adjoint_identity_with_forward_mode(case, device):
    inputs = case.inputs(device, F64)
    gen = torch.Generator().manual_seed(case.seed + 1)
    u = tuple(torch.randn(inputs[k].shape, generator=gen, dtype=F64).to(device)
              for k in case.wrt)
    out, j_u = torch.func.jvp(case.function(inputs), tuple(inputs[k] for k in case.wrt), u)
    v = torch.randn(out.shape, generator=gen, dtype=F64).to(device)
    jt_v = case.vjp(inputs, v)
    lhs = (v * j_u).sum()
    rhs = sum((jt_v[k] * u_k).sum() for k, u_k in zip(case.wrt, u, strict=True))
    torch.testing.assert_close(lhs, rhs)


HESSIAN_CASES = [case for case in CASES if hasattr(case.module, "hessians")]


@pytest.mark.parametrize("hessian_case", HESSIAN_CASES, ids=[c.name for c in HESSIAN_CASES])
def test_hand_hessian_matches_torch_func(hessian_case, device):
    case = hessian_case
    inputs = case.inputs(device, F64, **case.small_dims)
    argnums = tuple(range(len(case.wrt)))
    auto = torch.func.hessian(case.function(inputs), argnums)(*(inputs[k] for k in case.wrt))
    hand = case.manual(inputs, "hessians")
    torch.testing.assert_close(tuple(tuple(hand[a][b] for b in case.wrt) for a in case.wrt), auto)


STEPS = 5


def optimiser_run(case, inputs, lr, backward):
    """Parameters after each of STEPS steps of torch.optim.SGD on the case's ``wrt``."""
    params = [inputs[k].clone().requires_grad_() for k in case.wrt]
    optimiser = torch.optim.SGD(params, lr=lr)
    f = case.function(inputs, backward)
    v = inputs.get(case.grad_output)
    for _ in range(STEPS):
        optimiser.zero_grad()
        f(*params).backward(v)
        optimiser.step()
        yield {k: p.detach().clone() for k, p in zip(case.wrt, params, strict=True)}


def hand_run(case, inputs, lr):
    """The same steps with no autograd at all: manual gradients and the hand SGD step."""
    params = {k: inputs[k] for k in case.wrt}
    for _ in range(STEPS):
        params = sgd_step(params, case.manual({**inputs, **params}), lr)
        yield params


def test_training_with_the_manual_gradient(case, device, dtype):
    inputs = case.inputs(device, dtype)
    largest = max(g.abs().max() for g in case.reference(inputs).values())
    lr = 0.01 / largest.item()  # each step moves a parameter by at most 0.01 at first
    runs = zip(optimiser_run(case, inputs, lr, "autograd"),
               optimiser_run(case, inputs, lr, "manual"), hand_run(case, inputs, lr), strict=True)
    for step, (autograd, adapter, hand) in enumerate(runs, 1):
        for label, params in (("adapter", adapter), ("hand", hand)):
            torch.testing.assert_close(params, autograd, **case.tolerance(dtype),
                                       msg=lambda m, s=step, lb=label: f"{lb}, step {s}: {m}")
    assert not torch.equal(hand[case.wrt[0]], inputs[case.wrt[0]]), "training moved nothing"
