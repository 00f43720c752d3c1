"""The checker can fail: a zoo of wrong gradients, each rejected in every dtype and device.

Each mutant is built from the right gradients and names a classic mistake. A second set of
tests shows what weaker checks let through: the article's one-sided ``(a - b).max() < 1e-4``
and ``gradcheck``'s default tolerance.
"""

import pytest
import torch

from cases import CASES
from cases.limits import detection_limit
from cases.mlp_relu_mse import on_the_kink
from manual_grads import mlp_relu_mse as mlp

BY_NAME = {case.name: case for case in CASES}


def mlp_forgotten_squeeze(inputs, right):
    """``out - target`` without the squeeze: (N, 1) - (N,) broadcasts to (N, N)."""
    f = mlp.forward(**inputs)
    diff = f["out"] - inputs["target"]  # (N, N): the trap
    d_out = 2 * diff.sum(1, keepdim=True) / diff.numel()  # gradient of mean over N * N pairs
    d_l2, d_w2, d_b2 = mlp.linear_backward(f["l2"], inputs["w2"], d_out)
    d_x, d_w1, d_b1 = mlp.linear_backward(inputs["x"], inputs["w1"], d_l2 * (f["l1"] > 0))
    return {"x": d_x, "w1": d_w1, "b1": d_b1, "w2": d_w2, "b2": d_b2}


def mlp_relu_mask_ge(inputs, right):
    """``(l1 >= 0)``: slope 1 at the kink, where torch.relu (and the forward) take 0."""
    l1 = mlp.forward(**inputs)["l1"]
    d_x, d_w1, d_b1 = mlp.linear_backward(inputs["x"], inputs["w1"], right["l2"] * (l1 >= 0))
    return {**right, "x": d_x, "w1": d_w1, "b1": d_b1}


def scaled(factor_of):
    """Every gradient times a factor computed from the inputs."""
    return lambda inputs, right: {k: g * factor_of(inputs) for k, g in right.items()}


def replaced(name, value_of):
    return lambda inputs, right: {**right, name: value_of(inputs, right)}


# case -> mistake -> mutant(inputs, right gradients of every step) -> wrong wrt gradients
ZOO = {
    "linear_xw": {
        "row instead of column (X^T r transposed)": replaced("w", lambda i, g: g["w"].T),
        "the 2 of the square not cancelled by the 1/2": scaled(lambda i: 2),
        "summed over the wrong axis": replaced(
            "w", lambda i, g: (i["X"] * g["y_hat"]).sum(1, keepdim=True)),
    },
    "square_mean": {
        "missing 1/n": scaled(lambda i: i["x"].numel()),
        "missing factor 2 (3y instead of 6y)": scaled(lambda i: 0.5),
        "chain rule stopped at z": replaced("x", lambda i, g: g["z"]),
    },
    "vector_backward": {
        "ignores v (the backward of y.sum())": replaced("x", lambda i, g: 2 * torch.ones_like(
            i["x"])),
        "forgot J = 2I": replaced("x", lambda i, g: i["v"]),
    },
    "mlp_relu_mse": {
        "missing factor 2": scaled(lambda i: 0.5),
        "missing 1/N": scaled(lambda i: i["x"].shape[0]),
        "ReLU mask >= at the kink": mlp_relu_mask_ge,
        "dropped gradient of b1": replaced("b1", lambda i, g: torch.zeros_like(g["b1"])),
        "dropped gradient of b2": replaced("b2", lambda i, g: torch.zeros_like(g["b2"])),
        "forgotten squeeze, (N, 1) - (N,)": mlp_forgotten_squeeze,
        "d_b1 summed over the wrong axis": replaced("b1", lambda i, g: g["l1"].sum(1)),
        "d_w1 transposed": replaced("w1", lambda i, g: g["w1"].T),
    },
    "sgd_linear_regression": {
        "missing factor 2": scaled(lambda i: 0.5),
        "missing 1/N": scaled(lambda i: i["x"].shape[0]),
        "dropped gradient of b": replaced("b", lambda i, g: torch.zeros_like(g["b"])),
        "d_b as a mean, not a sum": replaced("b", lambda i, g: g["y_pred"].mean(0)),
        "d_w without the x": replaced("w", lambda i, g: g["y_pred"].sum(0, keepdim=True)),
    },
    "softmax_cross_entropy": {
        "missing 1/N": scaled(lambda i: i["logits"].shape[0]),
        "softmax without the - target": replaced(
            "logits", lambda i, g: i["logits"].softmax(-1) / i["logits"].shape[0]),
        "softmax over the batch axis": replaced("logits", lambda i, g: (
            i["logits"].softmax(0) * i["target"].sum(-1, keepdim=True) - i["target"])
            / i["logits"].shape[0]),
    },
}
for case in CASES:  # mistakes any gradient can have, for every parameter of every case
    for name in case.wrt:
        ZOO.setdefault(case.name, {})
        ZOO[case.name][f"sign of d_{name} flipped"] = replaced(name, lambda i, g, n=name: -g[n])
        ZOO[case.name][f"d_{name} off by a relative 1e-3"] = replaced(
            name, lambda i, g, n=name: g[n] * (1 + 1e-3))

MUTANTS = [(BY_NAME[c], label, mutant) for c, zoo in ZOO.items() for label, mutant in zoo.items()]


def mutant_inputs(case, device, dtype):
    if case.name == "mlp_relu_mse":
        return on_the_kink(device, dtype)
    return case.inputs(device, dtype)


def test_every_case_has_mutants_of_its_own():
    """Beyond the sign flip and the 1e-3 error every case gets: its own classic mistakes."""
    for name, zoo in ZOO.items():
        own = [label for label in zoo if not label.startswith("sign of d_")
               and not label.endswith("off by a relative 1e-3")]
        assert own, f"{name} has no mutants of its own"


@pytest.mark.parametrize("mutant", MUTANTS, ids=[f"{c.name}-{label}" for c, label, _ in MUTANTS])
def test_mutant_is_rejected(mutant, device, dtype):
    case, _, wrong = mutant
    inputs = mutant_inputs(case, device, dtype)
    right = case.manual(inputs, steps=True)
    reference = case.reference(inputs)
    case.assert_close({k: right[k] for k in case.wrt}, reference)  # the zoo's baseline holds
    with pytest.raises(AssertionError):
        case.assert_close(wrong(inputs, right), reference)


def article_is_same(a, b):
    """The article's check: one-sided (no abs) and with a fixed absolute tolerance."""
    return bool((a - b).max() < 1e-4)


def test_the_articles_check_accepts_what_handgrad_rejects():
    case = BY_NAME["mlp_relu_mse"]
    inputs = case.inputs()
    right, reference = case.manual(inputs), case.reference(inputs)
    assert (reference["w2"] < 0).all(), "the demonstration needs d_w2 < 0 everywhere"
    doubled = {**right, "w2": 2 * right["w2"]}  # too negative everywhere: a - b < 0
    assert article_is_same(doubled["w2"], reference["w2"])
    with pytest.raises(AssertionError, match="d_w2"):
        case.assert_close(doubled, reference)
    # The article checks x, w1, b2, w2 and b2 again, never b1: any d_b1 passes.
    wrong_b1 = {**right, "b1": right["b1"] + 100}
    assert all(article_is_same(wrong_b1[k], reference[k]) for k in ("x", "w1", "b2", "w2", "b2"))
    with pytest.raises(AssertionError, match="d_b1"):
        case.assert_close(wrong_b1, reference)


@pytest.mark.parametrize("case_name", ["linear_xw", "mlp_relu_mse"])
def test_gradchecks_defaults_let_a_relative_1e3_through(case_name, monkeypatch):
    """gradcheck (rtol 1e-3) passes a gradient 0.1 % off; handgrad's assert_close does not."""
    case = BY_NAME[case_name]
    inputs = case.inputs(**case.small_dims)
    right = case.module.gradients
    monkeypatch.setattr(case.module, "gradients",
                        lambda **kw: {k: g * (1 + 1e-3) for k, g in right(**kw).items()})
    wrt = [inputs[k].requires_grad_() for k in case.wrt]
    assert torch.autograd.gradcheck(case.function(inputs, "manual"), wrt)
    with pytest.raises(AssertionError):
        case.assert_close(case.manual(inputs), case.reference(inputs))


def test_failure_message_says_where_and_how_much():
    case = BY_NAME["mlp_relu_mse"]
    inputs = case.inputs("cpu", torch.float32, **case.small_dims)
    right, reference = case.manual(inputs), case.reference(inputs)
    wrong = {**right, "w1": right["w1"].clone()}
    wrong["w1"][1, 2] += 0.5
    with pytest.raises(AssertionError) as failure:
        case.assert_close(wrong, reference)
    message = str(failure.value)
    expected_value = reference["w1"][1, 2].item()
    for part in ("mlp_relu_mse [cpu, float32]: d_w1 by hand", "Mismatched elements: 1 / 12",
                 "Greatest absolute difference: 0.5 at index (1, 2)",
                 "Norm-relative error |a - b| / max(|a|, |b|): ",
                 f"At the worst index (1, 2): manual {expected_value + 0.5:.6g}",
                 f"autograd {expected_value:.6g}"):
        assert part in message


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


def test_on_the_kink_the_manual_mask_matches_exactly(device, dtype):
    """The MLP's forward uses torch.relu (slope 0 at 0); the hand mask ``l1 > 0`` agrees,
    exactly, on a row of ``l1`` that is all zeros."""
    case = BY_NAME["mlp_relu_mse"]
    inputs = on_the_kink(device, dtype)
    assert (case.forward(inputs)["l1"][0] == 0).all()
    manual, reference = case.manual(inputs, steps=True), case.reference(inputs, steps=True)
    assert (manual["l1"][0] == 0).all()
    assert (reference["l1"][0] == 0).all()
    assert (manual["l2"][0] != 0).all(), "the gradient reaching the kink is not 0 itself"
    case.assert_close(manual, reference)
    for form in case.variants:  # every form of the backward keeps the convention
        case.assert_close(case.manual(inputs, form), case.reference(inputs), form)


@pytest.mark.parametrize(("dtype_", "at_most"), [(torch.float64, 1e-6), (torch.float32, 1e-4)],
                         ids=["float64", "float32"])
def test_detection_limit(case, dtype_, at_most):
    """A uniform relative error this small or larger is caught, for every case."""
    assert detection_limit(case, dtype_) <= at_most
