"""Case C: a vector output, ``y = 2 x``, and ``y.backward(v)``."""

from handgrad import Case, Example
from manual_grads import vector_backward

CASE = Case(
    name="vector_backward",
    source="C (article 001, second part): y = 2x, y.backward(v) with a grad_output v",
    formula="y = 2 x, then y.backward(v)",
    closed_form="d_x = J^T v = 2 v",
    module=vector_backward,
    output="y",
    wrt=("x",),
    grad_output="v",
    dims={"N": 5},
    large={"N": 2**20},
    examples=(
        Example(
            label="article",
            inputs={"x": [1, 1, 1], "v": [0.1, 1.0, 0.0001]},
            expected={"y": "2.000000 2.000000 2.000000",
                      "d_x": "0.2000000 2.0000000 0.0002000"},
        ),
    ),
)
