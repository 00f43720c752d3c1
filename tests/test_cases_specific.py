"""What only one case has: the MLP's buffered backward and its ReLU kink, the softmax's
forward against torch's own cross-entropy, the embedding's repeatable scatter-add."""

import pytest
import torch

from cases import BY_NAME
from cases.mlp_relu_mse import ARTICLE_DIMS, on_the_kink, reused_buffers
from handgrad import measure, opinions
from manual_grads.mlp_relu_mse import gradient_buffers, gradients_into

MLP = BY_NAME["mlp_relu_mse"]


def test_gradients_into_returns_its_buffers_holding_the_gradients(device, dtype):
    """No gradient is allocated: each returned tensor is its buffer, the steps between
    (``d_out``, ``d_l1``) are written into theirs, and every value is right."""
    inputs = MLP.inputs(device, dtype, **MLP.small_dims)
    buffers = gradient_buffers(**inputs)
    grads = gradients_into(**inputs, buffers=buffers)
    for name, grad in grads.items():
        assert grad.data_ptr() == buffers[name].data_ptr(), name
    steps = measure(lambda x: MLP.reference(x, steps=True), inputs)
    steps.judge("buffers", {**grads, "out": buffers["d_out"], "l1": buffers["d_l1"],
                            **{k: v for k, v in MLP.manual(inputs, steps=True).items()
                               if k not in ("out", "l1", *grads)}}).check()


@pytest.mark.slow
def test_at_the_articles_sizes_every_form_agrees(device, dtype):
    """1000 samples of 784 features and 50 hidden units, as the article draws them."""
    inputs = MLP.inputs(device, dtype, **ARTICLE_DIMS)
    for form in MLP.forms:
        MLP.verdict(inputs, form, draw="the article's sizes").check()


def test_gradients_into_with_buffers_reused(device, dtype):
    for verdict in reused_buffers(MLP, device, dtype):
        verdict.check()


def test_relu_conventions_at_zero():
    """Three ways to write ReLU, three slopes at 0: the forward fixes the backward's mask."""
    slopes = {}
    for name, relu in {"torch.relu": torch.relu, "clamp_min(0)": lambda t: t.clamp_min(0),
                       "torch.maximum(x, 0)": lambda t: torch.maximum(t, torch.zeros_like(t))
                       }.items():
        x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        relu(x).backward()
        slopes[name] = x.grad.item()
    assert slopes == {"torch.relu": 0.0, "clamp_min(0)": 1.0, "torch.maximum(x, 0)": 0.5}


def test_on_the_kink_every_form_keeps_torchs_convention(device, dtype):
    """The MLP's forward uses torch.relu (slope 0 at 0); the hand mask ``l1 > 0`` gives
    exactly 0 on a row of ``l1`` that is all zeros, in every form of the backward."""
    inputs = on_the_kink(device, dtype)
    assert (MLP.forward(inputs)["l1"][0] == 0).all()
    steps = MLP.manual(inputs, steps=True)
    assert (steps["l1"][0] == 0).all()
    assert (steps["l2"][0] != 0).all(), "the gradient reaching the kink is not 0 itself"
    for form in MLP.forms:
        MLP.verdict(inputs, form, draw="on the kink").check()


def test_softmax_cross_entropy_forward_is_torchs(device, dtype):
    """The hand forward (log-sum-exp) against torch's cross-entropy with soft targets."""
    case = BY_NAME["softmax_cross_entropy"]
    inputs = case.inputs(device, dtype)
    inputs["target"] = inputs["target"].softmax(-1)  # any probability rows

    opinions.forward_matches(case, lambda x: torch.nn.functional.cross_entropy(
        x["logits"], x["target"]), inputs, "loss").check()


def test_embedding_scatter_add_gives_the_same_bits_every_run(device):
    """In torch's deterministic mode (the plugin's) on every device; on CUDA out of it too,
    where ``index_put_(accumulate=True)`` sorts the ids instead of adding with atomics."""
    case = BY_NAME["embedding"]
    inputs = case.inputs(device, torch.float32, B=256, T=16, V=4, C=64)  # ~1000 repeats an id
    first = case.manual(inputs)["wte"]
    was = torch.are_deterministic_algorithms_enabled()
    try:
        for mode in (True, False) if device == "cuda" else (True,):
            torch.use_deterministic_algorithms(mode)
            for _ in range(3):
                assert torch.equal(case.manual(inputs)["wte"], first), f"deterministic={mode}"
    finally:
        torch.use_deterministic_algorithms(was)
