"""Case E: linear regression, MSE gradients by hand and the SGD update.

E1 (article 002) is one scalar weight with no bias, ``L = (w x - y)^2``: this case with
one sample and ``b = 0``. E2 (article 003) is ``nn.Linear(1, 1)`` with ``nn.MSELoss`` and
``torch.optim.SGD(lr=0.001)`` on batches of 3. The training runs are in
``tests/test_sgd.py``; their numbers are kept here.
"""

from cases.case import Case, Example
from manual_grads import sgd_linear_regression

# E1: x = 2, y = 4, w0 = 1.0, lr = 0.1, three steps: w after each step, loss before it.
E1_STEPS = {"x": 2.0, "y": 4.0, "w0": 1.0, "lr": 0.1,
            "w": "1.8 1.96", "loss": "4.0 0.16 0.0064", "d_w": "-8.0 -1.6 -0.32"}
# E1's training loop: one update per sample, 100 epochs; the prediction for x = 4 and the
# loss of the last update, both in float32.
E1_LOOP = {"x": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.0], "w0": 1.0, "lr": 0.01,
           "epochs": 100, "predict_at": 4.0, "prediction": "7.9999986", "last_loss": "9.1e-13"}
# E2: one SGD step with lr = 0.001 from the parameters of its example below.
E2_STEP = {"lr": 0.001, "w": "-0.19459", "b": "0.88857"}

CASE = Case(
    name="sgd_linear_regression",
    source="E (articles 002, 003): linear regression with MSE, hand SGD vs torch.optim.SGD",
    module=sgd_linear_regression,
    output="loss",
    wrt=("w", "b"),
    dims={"N": 3},
    examples=(
        Example(
            label="e1",
            inputs={"w": [[E1_STEPS["w0"]]], "b": [0.0], "x": [[E1_STEPS["x"]]],
                    "y": [[E1_STEPS["y"]]]},
            expected={"y_pred": "2.0", "loss": "4.0", "d_w": "-8.0"},
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
