"""The checker can fail: classic wrong gradients, each rejected in every dtype.

Beyond the generic mutants every case gets (``handgrad.mutants``, run by the plugin), these
are the mistakes people make by hand, each planted in its case's module with
``handgrad.mutants.planted`` and judged on the draw that exposes it. A mistake that only
shows at large sizes, for non-contiguous inputs, at large magnitudes, for NaN inputs or
for a reused buffer must pass the default draw and fail that one: the reason those draws
exist.
"""

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from attention_mistakes import (
    attention_core,
    attention_lost_transpose,
    attention_one_log_sum_exp,
    attention_row_max_left_out,
    attention_scale_forgotten,
    attention_softmax_as_p_times_d_p,
)

from cases import BY_NAME
from cases.mlp_relu_mse import on_the_kink, reused_buffers
from handgrad import DTYPES, opinions
from handgrad.mutants import planted
from manual_grads import gelu, gelu_erf
from manual_grads import mlp_relu_mse as mlp
from manual_grads import softmax_cross_entropy as sce
from manual_grads.layer_norm import normalize, normalize_backward


def draw(name: str, form: str = "gradients"):
    return lambda case, device, dtype: opinions.draw_verdicts(case, name, device, dtype, form)


def kink(case, device, dtype):
    yield case.verdict(on_the_kink(device, dtype), draw="on the kink")


ON_THE_DEFAULT_DRAW = draw("default")
LARGE = draw("large")  # seconds a dtype: these entries are marked slow


@dataclass(frozen=True)
class Wrong:
    case: str
    label: str
    wrong: Callable  # (the right function) -> a wrong one with the same signature
    caught_by: Callable = ON_THE_DEFAULT_DRAW
    form: str = "gradients"
    only_there: bool = False  # passes the default draw: only ``caught_by`` shows it
    dtypes: tuple = tuple(DTYPES)  # where the mistake is larger than what the dtype resolves


def changed(name: str, change: Callable) -> Callable:
    """The right gradients with ``d_<name>`` replaced by ``change(inputs, gradients)``."""
    def wrong(right):
        def gradients(**inputs):
            grads = right(**inputs)
            return {**grads, name: change(inputs, grads)}
        return gradients
    return wrong


def mlp_forgotten_squeeze(right):
    """``out - target`` without the squeeze: (N, 1) - (N,) broadcasts to (N, N)."""
    def gradients(x, w1, b1, w2, b2, target):
        f = mlp.forward(x, w1, b1, w2, b2, target)
        diff = f["out"] - target  # (N, N): the trap
        d_out = 2 * diff.sum(1, keepdim=True) / diff.numel()
        d_l2, d_w2, d_b2 = mlp.linear_backward(f["l2"], w2, d_out)
        d_x, d_w1, d_b1 = mlp.linear_backward(x, w1, d_l2 * (f["l1"] > 0))
        return {"x": d_x, "w1": d_w1, "b1": d_b1, "w2": d_w2, "b2": d_b2}
    return gradients


def mlp_relu_mask_ge(right):
    """``(l1 >= 0)``: slope 1 at the kink, where torch.relu (and the forward) take 0."""
    def gradients(**inputs):
        grads = right(**inputs)
        l1 = mlp.forward(**inputs)["l1"]
        d_x, d_w1, d_b1 = mlp.linear_backward(inputs["x"], inputs["w1"], grads["l2"] * (l1 >= 0))
        return {**grads, "x": d_x, "w1": d_w1, "b1": d_b1}
    return gradients


def as_if_contiguous(t: torch.Tensor) -> torch.Tensor:
    """The storage read as a row-major tensor of this shape: right only when it is one."""
    strides = [1] * t.dim()
    for axis in range(t.dim() - 2, -1, -1):
        strides[axis] = strides[axis + 1] * t.shape[axis + 1]
    return torch.as_strided(t, t.shape, strides, t.storage_offset())


def mlp_into_without_b1(right):
    """``gradients_into`` that never writes ``d_b1``: its buffer keeps the last call's."""
    def gradients_into(x, w1, b1, w2, b2, target, buffers=None):
        keep = None if buffers is None else buffers["b1"].clone()
        grads = right(x, w1, b1, w2, b2, target, buffers)
        if keep is not None:
            grads["b1"].copy_(keep)
        return grads
    return gradients_into


def mlp_into_relu_by_mul(right):
    """``gradients_into`` with the ReLU step as ``d_l2.mul_(l1 > 0)``: 0 * NaN is NaN where
    torch's ReLU backward gives an exact 0."""
    def gradients_into(x, w1, b1, w2, b2, target, buffers=None):
        g = mlp.gradient_buffers(x, w1, b1, w2, b2, target) if buffers is None else buffers
        f = mlp.forward(x, w1, b1, w2, b2, target)
        d_out = torch.mul(f["diff"].unsqueeze(-1), 2 / x.shape[0], out=g["d_out"])
        d_l1 = torch.mm(d_out, w2.T, out=g["d_l1"]).mul_(f["l1"] > 0)
        torch.mm(f["l2"].T, d_out, out=g["w2"])
        torch.sum(d_out, 0, out=g["b2"])
        torch.mm(d_l1, w1.T, out=g["x"])
        torch.mm(x.T, d_l1, out=g["w1"])
        torch.sum(d_l1, 0, out=g["b1"])
        return {name: g[name] for name in ("x", "w1", "b1", "w2", "b2")}
    return gradients_into


def softmax_shifted_by_the_mean(right):
    """The log-sum-exp shift by the row's mean, not its max: exp overflows for large
    logits (inf / inf is NaN) where the max-shifted form cannot."""
    def gradients(logits, target):
        shifted = logits - logits.mean(-1, keepdim=True)
        p = shifted.exp() / shifted.exp().sum(-1, keepdim=True)
        return {"logits": (p * target.sum(-1, keepdim=True) - target) / logits.shape[0]}
    return gradients


def unbiased_variance(dim: int) -> Callable:
    """Step 4 with ``2 xc d_var / (n - 1)``: the variance differentiated as the unbiased
    one (batch norm's running statistics), where the forward normalised by the biased."""
    def change(inputs, grads):
        xc = normalize(inputs["x"], inputs["gamma"], inputs["beta"], dim)["xc"]
        n = xc.shape[dim]
        return grads["x"] + 2 * xc * grads["var"] * (1 / (n - 1) - 1 / n)
    return changed("x", change)


def batch_norm_over_features(inputs, grads):
    """Batch norm's backward taken over the features, layer norm's axis."""
    f = normalize(inputs["x"], inputs["gamma"], inputs["beta"], dim=-1)
    return normalize_backward(f, inputs["gamma"], inputs["v"], dim=-1)["x"]


def gelu_slope_of_u(inputs, grads):
    """tanh'(u) taken as ``1 - u^2``, not ``1 - tanh(u)^2``."""
    x, f = inputs["x"], gelu.forward(inputs["x"])
    d_u = grads["t"] * (1 - f["u"] ** 2)
    return inputs["v"] * 0.5 * (1 + f["t"]) + d_u * gelu.C * (1 + 3 * gelu.K * x * x)


def gelu_erf_by_the_tanh_slope(inputs, grads):
    """The erf forward given the tanh form's derivative: off by up to 9e-4."""
    return gelu.gradients(inputs["x"], inputs["v"])["x"]


def cross_entropy_off_by_one(inputs, grads):
    """``p - onehot`` with the id off by one: the next class pushed up, the right one down."""
    logits, target = inputs["logits"], inputs["target"]
    onehot = torch.nn.functional.one_hot((target + 1) % logits.shape[-1], logits.shape[-1])
    return (logits.softmax(-1) - onehot.to(logits.dtype)) / logits.shape[0]


def confident(case, device, dtype):
    """A row the model is sure of: logits [0, 10], target 1, p[target] = 1 - 4.5e-5."""
    inputs = {"logits": torch.tensor([[0.0, 10.0]], dtype=dtype, device=device),
              "target": torch.tensor([1], device=device)}
    yield case.verdict(inputs, draw="a confident row")


def cross_entropy_by_subtraction(inputs, grads):
    """``p - onehot`` by subtraction: at the target it cancels to p's rounding."""
    logits, target = inputs["logits"], inputs["target"]
    onehot = torch.nn.functional.one_hot(target, logits.shape[-1]).to(logits.dtype)
    return (logits.softmax(-1) - onehot) / logits.shape[0]
ZOO = [
    Wrong("linear_xw", "a row instead of a column (X^T r transposed)",
          changed("w", lambda i, g: g["w"].T)),
    Wrong("linear_xw", "summed over the features, not the rows",
          changed("w", lambda i, g: (i["X"] * g["y_hat"]).sum(1, keepdim=True))),
    Wrong("square_mean", "chain rule stopped at z", changed("x", lambda i, g: g["z"])),
    Wrong("vector_backward", "ignores v (the backward of y.sum())",
          changed("x", lambda i, g: 2 * torch.ones_like(i["x"]))),
    Wrong("vector_backward", "forgot J = 2I", changed("x", lambda i, g: i["v"])),
    # Subtracting mean(target) where target[n] belongs moves d_out by about 1 % here (the
    # outputs are far larger than the targets): below bfloat16's detection limit of 10 %.
    Wrong("mlp_relu_mse", "forgotten squeeze, (N, 1) - (N,)", mlp_forgotten_squeeze,
          dtypes=("float64", "float32", "float16")),
    Wrong("mlp_relu_mse", "ReLU mask >= 0 at the kink", mlp_relu_mask_ge, kink),
    Wrong("mlp_relu_mse", "d_b1 summed over the hidden units", changed(
        "b1", lambda i, g: g["l1"].sum(1))),
    Wrong("mlp_relu_mse", "d_w1 transposed", changed("w1", lambda i, g: g["w1"].T)),
    Wrong("mlp_relu_mse", "d_w1 summed over the first 1000 rows only (a chunking bug)",
          changed("w1", lambda i, g: i["x"][:1000].T @ g["l1"][:1000]), LARGE,
          only_there=True),
    Wrong("mlp_relu_mse", "x read as if contiguous in d_w1",
          changed("w1", lambda i, g: as_if_contiguous(i["x"]).T @ g["l1"]), draw("layouts"),
          only_there=True),
    Wrong("mlp_relu_mse", "gradients_into keeps a stale d_b1 in a reused buffer",
          mlp_into_without_b1, reused_buffers, form="gradients_into", only_there=True),
    Wrong("mlp_relu_mse", "gradients_into's ReLU step by mul_, which lets NaN through",
          mlp_into_relu_by_mul, draw("non-finite", "gradients_into"), form="gradients_into",
          only_there=True),
    Wrong("sgd_linear_regression", "d_b as a mean, not a sum",
          changed("b", lambda i, g: g["y_pred"].mean(0))),
    Wrong("sgd_linear_regression", "d_w without the x",
          changed("w", lambda i, g: g["y_pred"].sum(0, keepdim=True))),
    Wrong("softmax_cross_entropy", "softmax without the - target", changed(
        "logits", lambda i, g: i["logits"].softmax(-1) / i["logits"].shape[0])),
    Wrong("softmax_cross_entropy", "softmax over the batch axis", changed(
        "logits", lambda i, g: (i["logits"].softmax(0) * i["target"].sum(-1, keepdim=True)
                                - i["target"]) / i["logits"].shape[0])),
    Wrong("softmax_cross_entropy", "log-sum-exp shifted by the row mean, not the max",
          softmax_shifted_by_the_mean, draw("magnitudes"), only_there=True),
    Wrong("layer_norm", "the mean taken as a constant: d_x = d_xc",
          changed("x", lambda i, g: g["xc"])),
    # The unbiased variance moves d_x by about 2 % of its largest entry at these sizes:
    # within bfloat16's rounding of the steps on the way (its detection limit is 10 %).
    Wrong("layer_norm", "the variance differentiated as unbiased, 2 xc / (C - 1)",
          unbiased_variance(-1), dtypes=("float64", "float32", "float16")),
    Wrong("batch_norm", "the running statistics' unbiased variance in step 4",
          unbiased_variance(0), dtypes=("float64", "float32", "float16")),
    Wrong("batch_norm", "normalised over the features (layer norm's axis)",
          changed("x", batch_norm_over_features)),
    Wrong("gelu", "the gate alone, v * 0.5 (1 + t): the slope of tanh dropped",
          changed("x", lambda i, g: i["v"] * 0.5 * (1 + gelu.forward(i["x"])["t"]))),
    Wrong("gelu", "tanh' taken as 1 - u^2", changed("x", gelu_slope_of_u)),
    Wrong("gelu_erf", "the gate alone, v * Phi(x): x phi(x) dropped",
          changed("x", lambda i, g: i["v"] * gelu_erf.forward(i["x"])["cdf"])),
    # The two GELUs' slopes differ by at most 9e-4: below what half precision resolves.
    Wrong("gelu_erf", "the tanh approximation's derivative", changed(
        "x", gelu_erf_by_the_tanh_slope), dtypes=("float64", "float32")),
    Wrong("embedding", "scattered by assignment: of each repeated id, one row is kept",
          changed("wte", lambda i, g: torch.zeros_like(i["wte"]).index_put_(
              (i["idx"],), i["v"]))),
    Wrong("embedding", "d_wpe from the first sequence only, not summed over the batch",
          changed("wpe", lambda i, g: i["v"][0])),
    Wrong("cross_entropy", "the softmax alone, the - onehot forgotten", changed(
        "logits", lambda i, g: i["logits"].softmax(-1) / i["logits"].shape[0])),
    Wrong("cross_entropy", "the one-hot row one class off (target + 1)",
          changed("logits", cross_entropy_off_by_one)),
    Wrong("cross_entropy", "1 - p at the target by subtraction, where p is near 1",
          changed("logits", cross_entropy_by_subtraction), confident, only_there=True),
    Wrong("causal_self_attention", "d_k as d_s q, a transpose lost",
          attention_core(attention_lost_transpose)),
    Wrong("causal_self_attention", "the 1/sqrt(D) scale left out of the backward",
          attention_core(attention_scale_forgotten)),
    Wrong("causal_self_attention", "softmax backward as p * d_p, its row sum left out",
          attention_core(attention_softmax_as_p_times_d_p)),
    Wrong("causal_self_attention", "d_x through the queries only, not the keys and values",
          changed("x", lambda i, g: g["qkv"][:, :, 0].flatten(2)
                  @ i["w_qkv"][:, 0].flatten(1).T)),
    # The next two are right in exact arithmetic and round worse than autograd: each is
    # rejected where its extra rounding shows, in the dtypes listed (module docstring).
    Wrong("causal_self_attention", "row_max's gradient (0 but for rounding) left out",
          attention_core(attention_row_max_left_out), draw("magnitudes"), only_there=True,
          dtypes=("float64", "float32", "bfloat16")),
    Wrong("causal_self_attention", "lean form's p from one log-sum-exp statistic",
          attention_core(attention_one_log_sum_exp), draw("magnitudes", "gradients_recompute"),
          form="gradients_recompute", only_there=True, dtypes=("float64", "bfloat16")),
]


ENTRIES = [pytest.param(w, DTYPES[d], id=f"{w.case}: {w.label}-{d}",
                        marks=[pytest.mark.slow] * (w.caught_by is LARGE))
           for w in ZOO for d in w.dtypes]


@pytest.mark.parametrize(("entry", "dtype"), ENTRIES)
def test_wrong_gradient_is_rejected(entry, dtype, device):
    case = BY_NAME[entry.case]
    right = getattr(case.module, entry.form)
    wrong = planted(case, **{entry.form: entry.wrong(right)})
    for verdict in entry.caught_by(case, device, dtype):
        verdict.check()  # the right gradients pass this draw
    # The first input set that rejects it is enough: each failing one takes every look.
    rejected = any(not v.passed for v in entry.caught_by(wrong, device, dtype))
    assert rejected, f"{entry.label}: passed {entry.caught_by}"
    if entry.only_there:
        for verdict in draw("default", entry.form)(wrong, device, dtype):
            assert verdict.passed, f"the default draw already shows it: {verdict.explain()}"


def test_softmax_shift_module_keeps_the_max():
    """The zoo's mean-shifted softmax is wrong only because the module shifts by the max."""
    assert "amax" in sce.forward.__code__.co_names
