"""Case A: ``y_hat = X w``, per-row squared error, ``loss.sum().backward()``."""

import torch

from handgrad import Case, Example
from manual_grads import linear_xw


def _w_giving(X, y_hat):
    """A ``w`` with ``X @ w == y_hat``: the article's ``w`` was random and not printed."""
    X, y_hat = torch.tensor(X, dtype=torch.float64), torch.tensor(y_hat, dtype=torch.float64)
    return (torch.linalg.pinv(X) @ y_hat).tolist()


CASE = Case(
    name="linear_xw",
    source="A (article 000): y = Xw, loss = (Xw - y)^2 / 2 per row, loss.sum().backward()",
    formula="y_hat = X w; loss = sum((y_hat - y)^2 / 2)",
    closed_form="d_w = X^T (X w - y), a column shaped like w",
    module=linear_xw,
    output="loss",
    wrt=("w",),
    dims={"N": 8, "D": 3},
    large={"N": 2**16},
    examples=(
        Example(
            label="1d",
            inputs={"X": [[1, 2, 3]], "y": [[6]], "w": _w_giving([[1, 2, 3]], [[-2.1865]])},
            expected={"y_hat": "-2.1865", "residual": "-8.1865", "loss": "33.5093",
                      "d_w": "-8.1865 -16.3730 -24.5595"},
        ),
        Example(
            label="2d",
            inputs={"X": [[1, 2, 3], [4, 5, 6]], "y": [[6], [15]],
                    "w": _w_giving([[1, 2, 3], [4, 5, 6]], [[-6.0518], [-13.1038]])},
            expected={"y_hat": "-6.0518 -13.1038", "residual": "-12.0518 -28.1038",
                      "loss_rows": "72.6224 394.9125",
                      "d_w": "-124.4671 -164.6226 -204.7782"},
        ),
    ),
)
