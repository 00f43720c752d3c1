"""Bad input gets a ValueError that names the argument, never a silently wrong gradient.

Every public function of every case (its forward, its gradients and their variants) is
fed each input spoiled one way at a time. The classic trap is ``target`` shaped ``(N, 1)``
against ``out.squeeze(-1)`` of shape ``(N,)``: broadcasting makes ``(N, N)``, silently.
"""

import pytest
import torch


def calls(case):
    """Each public function of the case, as a callable on the full input dict."""
    yield "forward", case.forward
    for form in ("gradients", *case.variants):
        yield form, lambda inputs, form=form: case.manual(inputs, form)


def spoiled(case, inputs, name, takes):
    """Ways to spoil one input of a call, each with the pattern its message must match."""
    t = inputs[name]
    yield "integer dtype", t.to(torch.int64), rf"^{name}: dtype torch.int64 is not floating"
    yield "extra unit axis", t.unsqueeze(-1), rf"^{name}: expected shape"
    if len(takes) > 1:
        other = torch.float32 if t.dtype == torch.float64 else torch.float64
        yield "mixed dtypes", t.to(other), rf"{name}\b.*one dtype"
    for axis, symbol in enumerate(case.shapes[name].split()):
        if symbol.isdigit():
            continue  # a fixed size: the extra axis and the others cover it
        yield f"{symbol} empty", t.narrow(axis, 0, 0), rf"{name}\b.*{symbol}"
        if any(symbol in case.shapes[other].split() for other in takes - {name}):
            grown = torch.cat([t, t.narrow(axis, 0, 1)], dim=axis)
            yield f"{symbol} off by one", grown, rf"{name}\b.*{symbol}=|{symbol}=.*{name}\b"


def test_bad_input_is_rejected_by_name(case):
    inputs = case.inputs(**case.small_dims)
    checked = 0
    for label, call in calls(case):
        takes = inputs.keys() - ({case.grad_output} if label == "forward" else set())
        for name in sorted(takes):
            for _how, bad, pattern in spoiled(case, inputs, name, takes):
                with pytest.raises(ValueError, match=pattern):
                    call({**inputs, name: bad})
                checked += 1
    assert checked >= 3 * len(inputs)


def test_a_non_tensor_is_a_type_error(case):
    inputs = case.inputs(**case.small_dims)
    name = case.wrt[0]
    with pytest.raises(TypeError, match=rf"^{name}: expected a torch.Tensor, got list"):
        case.module.gradients(**{**inputs, name: inputs[name].tolist()})


def test_target_with_a_unit_axis_does_not_broadcast():
    """The ``(N, 1) - (N,)`` trap of the MLP, spelled out."""
    from manual_grads import mlp_relu_mse as mlp

    gen = torch.Generator().manual_seed(0)
    x, w1, b1 = torch.randn(4, 3, generator=gen), torch.randn(3, 2, generator=gen), torch.zeros(2)
    w2, b2 = torch.randn(2, 1, generator=gen), torch.zeros(1)
    target = torch.randn(4, 1, generator=gen)
    with pytest.raises(ValueError, match=r"^target: expected shape \(N,\), got \(4, 1\)"):
        mlp.gradients(x, w1, b1, w2, b2, target)
