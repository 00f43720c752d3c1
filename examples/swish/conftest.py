"""Declares this project's cases to handgrad's pytest plugin: ``pytest`` then runs every
generic check on them (agreement with autograd in four dtypes, every chain-rule step,
large sizes, non-contiguous layouts, magnitudes, NaN and inf, generated shapes, finite
differences, forward mode, training steps, mutants, bad input)."""

import swish

from handgrad import Case

handgrad_cases = [
    Case(name="swish", source="examples/swish", formula="y = x * sigmoid(x)",
         closed_form="d_x = v * (s + x s (1 - s))", module=swish, output="y", wrt=("x",),
         grad_output="v", dims={"N": 8, "D": 5}),
]
