"""Bad input gets an error that names the argument, never a silently wrong gradient.

The plugin feeds every public function of every case each input spoiled one way at a time
(``handgrad.probes``); here are the messages themselves, in full, and the classic trap:
``target`` shaped ``(N, 1)`` against ``out.squeeze(-1)`` of shape ``(N,)`` broadcasts to
``(N, N)``, silently, unless it is refused.
"""

import re

import pytest
import torch


def test_target_with_a_unit_axis_does_not_broadcast():
    """The ``(N, 1) - (N,)`` trap of the MLP, spelled out."""
    from manual_grads import mlp_relu_mse as mlp

    gen = torch.Generator().manual_seed(0)
    x, w1, b1 = torch.randn(4, 3, generator=gen), torch.randn(3, 2, generator=gen), torch.zeros(2)
    w2, b2 = torch.randn(2, 1, generator=gen), torch.zeros(1)
    target = torch.randn(4, 1, generator=gen)
    with pytest.raises(ValueError, match=r"^target: expected shape \(N,\), got \(4, 1\)"):
        mlp.gradients(x, w1, b1, w2, b2, target)


def test_check_messages_in_full():
    """The whole of each message ``check`` writes, for a reader who gets one."""
    from handgrad import check

    shapes = {"a": "N 2", "b": "N", "i": "M < N"}
    ok = torch.zeros(3, 2)
    messages = {
        "a: dtype torch.int64 is not one handgrad checks; a gradient needs a floating-point "
        "tensor (float64, float32, bfloat16 or float16)": {"a": ok.long()},
        "a: dtype torch.complex64 is not one handgrad checks; a gradient needs a "
        "floating-point tensor (float64, float32, bfloat16 or float16)":
            {"a": ok.to(torch.complex64)},
        "b: dtype torch.float64 differs from a's torch.float32; all inputs need one dtype":
            {"a": ok, "b": torch.zeros(3, dtype=torch.float64)},
        "b: on device meta, but a is on cpu; all inputs need one device":
            {"a": ok, "b": torch.zeros(3, device="meta")},
        "a: expected shape (N, 2), got (3, 3)": {"a": torch.zeros(3, 3)},
        "b: expected shape (N,), got (3, 1)": {"a": ok, "b": torch.zeros(3, 1)},
        "b: expected shape (N,) with N=3 as in a, got (4,)": {"a": ok, "b": torch.zeros(4)},
        "a: expected shape (N, 2) with N >= 1, got (0, 2) (empty)": {"a": torch.zeros(0, 2)},
        "a: expected a torch.Tensor of shape (N, 2), got list": {"a": [[0.0, 0.0]]},
        "c: not an input; SHAPES names a, b, i": {"a": ok, "c": ok},
        "i: dtype torch.float32 is not an integer id type; ids need torch.int64 or "
        "torch.int32": {"a": ok, "i": torch.zeros(3)},
        "i: ids must be in range [0, N=3), got values from -1 to 2":
            {"a": ok, "i": torch.tensor([-1, 0, 2])},
    }
    for message, tensors in messages.items():
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            check(shapes, **tensors)
    assert check(shapes, a=ok, b=torch.zeros(3)) == {"N": 3}


def test_gradient_buffers_check_every_input():
    """The buffers are sized from the inputs, so the inputs are checked first, by name."""
    from cases.mlp_relu_mse import CASE
    from manual_grads.mlp_relu_mse import gradient_buffers

    inputs = CASE.inputs(**CASE.small_dims)
    for name, t in inputs.items():
        with pytest.raises(ValueError, match=rf"^{name}: expected shape"):
            gradient_buffers(**{**inputs, name: t.unsqueeze(-1)})
