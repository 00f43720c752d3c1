"""Case E: linear regression, MSE gradients by hand and the SGD update.

E1 (article 002) is one scalar weight with no bias, ``L = (w x - y)^2``: this case with
one sample and ``b = 0``. E2 (article 003) is ``nn.Linear(1, 1)`` with ``nn.MSELoss`` and
``torch.optim.SGD(lr=0.001)`` on batches of 3. ``side_by_side`` trains torch's model and
the hand version on the same batches; ``tests/test_sgd.py`` holds them equal after every
step, and ``walkthrough`` prints the article's steps.
"""

import torch

from handgrad import Case, Example
from manual_grads import sgd_linear_regression as sgd

# E1: x = 2, y = 4, w0 = 1.0, lr = 0.1, three steps: w after each step, loss before it.
E1_STEPS = {"x": 2.0, "y": 4.0, "w0": 1.0, "lr": 0.1,
            "w": "1.800000 1.960000",
            "loss": "4.000000 0.1600000 0.00640000", "d_w": "-8.000000 -1.600000 -0.3200000"}
# E1's training loop: one update per sample, 100 epochs; the prediction for x = 4 and the
# loss of the last update, both in float32.
E1_LOOP = {"x": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.0], "w0": 1.0, "lr": 0.01,
           "epochs": 100, "predict_at": 4.0, "prediction": "7.9999986", "last_loss": "9.1e-13"}
# E2: one SGD step with lr = 0.001 from the parameters of its example below.
E2_STEP = {"lr": 0.001, "w": "-0.19459", "b": "0.88857"}

CASE = Case(
    name="sgd_linear_regression",
    source="E (articles 002, 003): linear regression with MSE, hand SGD vs torch.optim.SGD",
    formula="loss = mean((x w^T + b - y)^2); p <- p - lr d_p",
    closed_form="d_w = (2/N) r^T x, d_b = (2/N) sum r, with r = x w^T + b - y",
    module=sgd,
    output="loss",
    wrt=("w", "b"),
    dims={"N": 3},
    large={"N": 2**16},
    walkthrough=lambda: replay_steps(),
    examples=(
        Example(
            label="e1",
            inputs={"w": [[E1_STEPS["w0"]]], "b": [0.0], "x": [[E1_STEPS["x"]]],
                    "y": [[E1_STEPS["y"]]]},
            expected={"y_pred": "2.000000", "loss": "4.000000", "d_w": "-8.000000"},
        ),
        Example(
            label="e2",
            inputs={"w": [[-0.34487]], "b": [0.86449], "x": [[4.6667], [8.2222], [2.8889]],
                    "y": [[9.7349], [17.2363], [6.3046]]},
            expected={"y_pred": "-0.7449 -1.9711 -0.1318", "loss": "173.39",
                      "d_w": "-150.28", "d_b": "-24.08"},
        ),
    ),
)


def side_by_side(batches, w0, b0, lr, bias=True):
    """Train ``nn.Linear(1, 1)`` + ``nn.MSELoss`` + ``torch.optim.SGD`` and the hand version.

    Both see the same batches. Without ``bias`` the model is E1's ``y_pred = w x`` and
    ``b`` stays 0 on the hand side. Yields ``{"hand": ..., "torch": ...}`` for each step:
    the loss and gradients before the step and the parameters after it, keyed alike.
    """
    model = torch.nn.Linear(1, 1, bias=bias, device=w0.device, dtype=w0.dtype)
    with torch.no_grad():
        model.weight.copy_(w0)
        if bias:
            model.bias.copy_(b0)
    optimiser = torch.optim.SGD(model.parameters(), lr=lr)
    torch_params = {"w": model.weight, "b": model.bias} if bias else {"w": model.weight}
    params = {"w": w0.clone(), "b": b0.clone()}
    for x, y in batches:
        optimiser.zero_grad()
        torch_loss = torch.nn.MSELoss()(model(x), y)
        torch_loss.backward()
        torch_grads = {f"d_{k}": p.grad.clone() for k, p in torch_params.items()}
        optimiser.step()

        loss = sgd.forward(**params, x=x, y=y)["loss"]
        grads = sgd.gradients(**params, x=x, y=y)
        params |= sgd.sgd_step({k: params[k] for k in torch_params},
                               {k: grads[k] for k in torch_params}, lr)
        yield {
            "hand": {"loss": loss, **{f"d_{k}": grads[k] for k in torch_params},
                     **{k: params[k] for k in torch_params}},
            "torch": {"loss": torch_loss.detach(), **torch_grads,
                      **{k: p.detach().clone() for k, p in torch_params.items()}},
        }


def e2_run(device="cpu", dtype=torch.float64):
    """E2's training run, seeded: x = linspace(2, 10, 10), y = 2 x + U(0, 1), shuffled
    batches of 3 for 10 epochs, lr = 0.001. Returns the batches and the starting w, b."""
    gen = torch.Generator().manual_seed(CASE.seed)
    x = torch.linspace(2, 10, 10, dtype=torch.float64).unsqueeze(1)
    y = 2 * x + torch.rand(x.shape, generator=gen, dtype=torch.float64)
    w0, b0 = torch.rand((1, 1), generator=gen) * 2 - 1, torch.rand(1, generator=gen) * 2 - 1
    data = torch.utils.data.TensorDataset(x.to(device, dtype), y.to(device, dtype))
    loader = torch.utils.data.DataLoader(data, batch_size=3, shuffle=True, generator=gen)
    batches = [batch for _ in range(10) for batch in loader]
    return batches, w0.to(device, dtype), b0.to(device, dtype)


def replay_steps():
    """The article's SGD steps, hand and torch side by side (printed by the walkthrough)."""
    one = torch.ones(1, 1, dtype=torch.float64)
    x, y, w0 = (E1_STEPS[k] * one for k in ("x", "y", "w0"))
    yield (f"E1, hand SGD against torch: x = {E1_STEPS['x']:g}, y = {E1_STEPS['y']:g}, "
           f"w = {E1_STEPS['w0']:g}, lr = {E1_STEPS['lr']:g}")
    yield f"  {'step':>4}  {'loss':>17}  {'dL/dw':>17}  {'w after':>17}   (hand | torch)"
    steps = side_by_side([(x, y)] * 3, w0, torch.zeros(1, dtype=torch.float64),
                         E1_STEPS["lr"], bias=False)
    for i, step in enumerate(steps, 1):
        cells = [f"{step['hand'][k].item():.6g} | {step['torch'][k].item():.6g}"
                 for k in ("loss", "d_w", "w")]
        yield f"  {i:>4}  " + "  ".join(f"{c:>17}" for c in cells)
    (example,) = [e for e in CASE.examples if e.label == "e2"]
    t = example.tensors()
    yield f"E2, one step of lr = {E2_STEP['lr']:g} on x = {t['x'].flatten().tolist()}"
    (step,) = side_by_side([(t["x"], t["y"])], t["w"], t["b"], E2_STEP["lr"])
    for key in ("loss", "d_w", "d_b", "w", "b"):
        digits = 5 if key in ("w", "b") else 2
        yield (f"  {key:<5} hand {step['hand'][key].item():.{digits}f}"
               f"   torch {step['torch'][key].item():.{digits}f}")
