"""The transformer ops' hand forwards against torch's own functions, by the verdict: a case
is judged against autograd of its own forward, so these pin that forward to the op it
stands for."""

import torch
import torch.nn.functional as F

from cases import BY_NAME
from handgrad import compare, opinions
from manual_grads import batch_norm


def judge_forward(name: str, torch_op, device, dtype) -> None:
    case = BY_NAME[name]
    opinions.forward_matches(case, torch_op, case.inputs(device, dtype),
                             f"{name} forward [{device}, {dtype}]").check()


def test_layer_norm_is_torchs(device, dtype):
    judge_forward("layer_norm", lambda x: F.layer_norm(
        x["x"], x["x"].shape[-1:], x["gamma"], x["beta"]), device, dtype)


def test_batch_norm_is_torchs_in_training(device, dtype):
    judge_forward("batch_norm", lambda x: F.batch_norm(
        x["x"], None, None, x["gamma"], x["beta"], training=True), device, dtype)


def test_batch_norm_running_statistics_are_torchs(device, dtype):
    """The buffers F.batch_norm updates in training: the unbiased variance, N - 1."""
    x = BY_NAME["batch_norm"].inputs(device, dtype)["x"]
    start = {"mean": torch.randn(x.shape[1], dtype=torch.float64).to(device, dtype),
             "var": torch.rand(x.shape[1], dtype=torch.float64).to(device, dtype) + 0.5}

    def by_hand(inputs):
        mean, var = batch_norm.running_statistics(inputs["x"], inputs["mean"], inputs["var"])
        return {"running_mean": mean, "running_var": var}

    def by_torch(inputs):
        mean, var = inputs["mean"].clone(), inputs["var"].clone()
        F.batch_norm(inputs["x"], mean, var, training=True, momentum=batch_norm.MOMENTUM)
        return {"running_mean": mean, "running_var": var}

    compare(f"batch_norm running statistics [{device}, {dtype}]", by_hand, by_torch,
            {"x": x, **start}).check()


def test_gelu_is_torchs_tanh_approximation(device, dtype):
    judge_forward("gelu", lambda x: F.gelu(x["x"], approximate="tanh"), device, dtype)


def test_gelu_erf_is_torchs_default(device, dtype):
    judge_forward("gelu_erf", lambda x: F.gelu(x["x"]), device, dtype)


def test_the_tanh_forward_is_not_the_erf_op():
    """The two GELUs differ by up to 5e-4: pinned to the other op, a forward fails."""
    case = BY_NAME["gelu"]
    assert not opinions.forward_matches(case, lambda x: F.gelu(x["x"]), case.inputs(),
                                        "gelu against the erf op").passed


def test_embedding_is_torchs_lookup(device, dtype):
    judge_forward("embedding", lambda x: F.embedding(x["idx"], x["wte"]) + x["wpe"],
                  device, dtype)


def test_cross_entropy_is_torchs_with_class_ids(device, dtype):
    judge_forward("cross_entropy", lambda x: F.cross_entropy(x["logits"], x["target"]),
                  device, dtype)
