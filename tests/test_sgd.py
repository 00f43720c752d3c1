"""Hand SGD against ``nn.Linear(1, 1)`` + ``nn.MSELoss`` + ``torch.optim.SGD``, step by step.

Both sides see the same batches; after every step the loss, the gradients and the
parameters are judged by the verdict (the truth: torch's run in float64), and the articles'
printed trajectories must come out (float32 and float64, what the articles ran in).
"""

import runpy
from pathlib import Path

import pytest
import torch

from cases.sgd_linear_regression import CASE, E1_LOOP, E1_STEPS, E2_STEP, e2_run, side_by_side
from handgrad import compare
from handgrad.probes import assert_printed
from manual_grads import sgd_linear_regression as sgd

PRINTED = (torch.float64, torch.float32)


def train_both(batches, w0, b0, lr, bias=True):
    """``side_by_side``, judged after every step; returns the hand side's history."""
    inputs = {"w0": w0, "b0": b0, **{f"x{i}": x for i, (x, _) in enumerate(batches)},
              **{f"y{i}": y for i, (_, y) in enumerate(batches)}}
    history = []

    def side(name):
        def run(t):
            steps = side_by_side([(t[f"x{i}"], t[f"y{i}"]) for i in range(len(batches))],
                                 t["w0"], t["b0"], lr, bias)
            values = [s[name] for s in steps]
            if name == "hand" and not history:
                history.extend(values)
            return {f"{k} after step {i}": v for i, step in enumerate(values, 1)
                    for k, v in step.items()}
        return run

    compare(f"hand SGD against torch.optim.SGD, {len(batches)} steps", side("hand"),
            side("torch"), inputs).check()
    return history


def scalar(value, device, dtype, shape=(1, 1)):
    return torch.full(shape, value, device=device, dtype=dtype)


def test_e1_worked_steps(device, dtype):
    """x = 2, y = 4, w = 1, lr = 0.1: w goes 1 -> 1.8 -> 1.96, the loss 4 -> 0.16 -> 0.0064."""
    x, y = scalar(E1_STEPS["x"], device, dtype), scalar(E1_STEPS["y"], device, dtype)
    history = train_both([(x, y)] * 3, scalar(E1_STEPS["w0"], device, dtype),
                         scalar(0.0, device, dtype, (1,)), E1_STEPS["lr"], bias=False)
    if dtype not in PRINTED:
        return
    assert_printed(torch.stack([h["w"] for h in history[:2]]), E1_STEPS["w"], "w")
    assert_printed(torch.stack([h["loss"] for h in history]), E1_STEPS["loss"], "loss")
    assert_printed(torch.stack([h["d_w"] for h in history]), E1_STEPS["d_w"], "d_w")


def test_e1_training_loop(device, dtype):
    """One update per sample for 100 epochs; then w x at x = 4 is 7.9999986 (float32)."""
    samples = [(scalar(x, device, dtype), scalar(y, device, dtype))
               for x, y in zip(E1_LOOP["x"], E1_LOOP["y"], strict=True)]
    history = train_both(samples * E1_LOOP["epochs"], scalar(E1_LOOP["w0"], device, dtype),
                         scalar(0.0, device, dtype, (1,)), E1_LOOP["lr"], bias=False)
    assert len(history) == 300
    if dtype not in PRINTED:
        return
    assert_printed(history[-1]["w"] * E1_LOOP["predict_at"], E1_LOOP["prediction"], "w * 4")
    assert history[-1]["loss"] < 1e-10 < history[0]["loss"]
    if (device, dtype) == ("cpu", torch.float32):  # the article's run; a GPU's fused
        assert_printed(history[-1]["loss"], E1_LOOP["last_loss"], "loss")  # mul-add may differ


def test_e2_one_step(device, dtype):
    """The article's batch: w -0.34487 -> -0.19459 and b 0.86449 -> 0.88857 at lr 0.001."""
    (example,) = [e for e in CASE.examples if e.label == "e2"]
    t = example.tensors(device, dtype)
    (step,) = train_both([(t["x"], t["y"])], t["w"], t["b"], E2_STEP["lr"])
    if dtype not in PRINTED:
        return
    assert_printed(step["w"], E2_STEP["w"], "w")
    assert_printed(step["b"], E2_STEP["b"], "b")


def test_e2_ten_epochs_of_shuffled_batches(device, dtype):
    """x = linspace(2, 10, 10), y = 2x + U(0, 1), batches of 3 shuffled, 10 epochs."""
    batches, w0, b0 = e2_run(device, dtype)
    history = train_both(batches, w0, b0, lr=E2_STEP["lr"])
    assert len(history) == 10 * 4  # 3 + 3 + 3 + 1 samples an epoch
    first, last = (sum(h["loss"] for h in history[i:i + 4]) for i in (0, len(history) - 4))
    assert last < first / 4, "training should have lowered the loss"


@pytest.mark.parametrize(("params", "grads", "lr", "pattern"), [
    ({"w": torch.ones(1, 1)}, {"b": torch.ones(1)}, 0.1, r"^grads: keys \['b'\] differ"),
    ({"w": torch.ones(1, 1)}, {"w": torch.ones(1, 1)}, 0.0, r"^lr: expected a positive"),
    ({"w": torch.ones(1, 1)}, {"w": torch.ones(1)}, 0.1,
     r"^grads\['w'\]: expected \(\(1, 1\), torch.float32\) like params\['w'\], got \(\(1,\), "),
    ({"w": torch.ones(1, 1)}, {"w": torch.ones(1, 1, dtype=torch.float64)}, 0.1,
     r"^grads\['w'\]: .* got \(\(1, 1\), torch.float64\)"),
    ({"w": torch.ones(1, 1)}, {"w": [[1.0]]}, 0.1, r"^grads\['w'\]: .* got list$"),
])
def test_sgd_step_rejects_bad_input(params, grads, lr, pattern):
    with pytest.raises(ValueError, match=pattern):
        sgd.sgd_step(params, grads, lr)


def test_sgd_loss_curve_is_drawn(tmp_path):
    pytest.importorskip("matplotlib", reason="the figure needs the plot extra")
    script = Path(__file__).resolve().parents[1] / "docs" / "sgd_loss_curve.py"
    out = tmp_path / "curve.png"
    runpy.run_path(str(script), run_name="curve")["main"](["--out", str(out)])
    assert out.read_bytes().startswith(b"\x89PNG")
