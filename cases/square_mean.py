"""Case B: ``out = mean(3 (x + 2)^2)`` and ``out.backward()``."""

from handgrad import Case, Example
from manual_grads import square_mean

CASE = Case(
    name="square_mean",
    source="B (article 001, first part): out = mean(3 (x + 2)^2), out.backward()",
    formula="out = mean(3 (x + 2)^2)",
    closed_form="d_x = 6 (x + 2) / n",
    module=square_mean,
    output="out",
    wrt=("x",),
    dims={"N": 3, "M": 4},
    large={"N": 4096, "M": 256},
    examples=(
        Example(
            label="ones",
            inputs={"x": [[1, 1], [1, 1]]},
            expected={"y": "3.000000 3.000000 3.000000 3.000000", "out": "27.00000",
                      "d_x": "4.500000 4.500000 4.500000 4.500000"},
        ),
    ),
)
