"""Case D: a two-layer MLP with ReLU and MSE, its backward written back to front.

The article prints no numbers for this example; its inputs are ``randn`` at the sizes
below (1000 samples of 784 features, 50 hidden units), which are this case's sizes.
"""

import torch

from cases.case import Case, Tolerance
from manual_grads import mlp_relu_mse

CASE = Case(
    name="mlp_relu_mse",
    source="D (article 004): x @ w1 + b1 -> relu -> @ w2 + b2 -> MSE, backward by hand",
    formula="loss = mean((relu(x w1 + b1) w2 + b2 - target)^2)",
    closed_form="d_out = 2 r / N; d_w2 = l2^T d_out; d_l1 = d_out w2^T * (l1 > 0); d_w1 = x^T d_l1",
    module=mlp_relu_mse,
    output="loss",
    wrt=("x", "w1", "b1", "w2", "b2"),
    dims={"N": 1000, "D": 784, "H": 50},
    variants={"gradients_broadcast": {
        # d_w1 is a sum of 1000 float32 products taken in another order than the matmul's,
        torch.float32: Tolerance(1.3e-6, 5e-5, "so entries near 0 keep ~10 ulp of max|d_w1|~90"),
    }, "gradients_into": {}},  # the matmul form into buffers: torch's default tolerances hold
)


def on_the_kink(device="cpu", dtype=torch.float64):
    """Small inputs where the first row of ``l1`` is exactly 0: a zero row of ``x`` and a
    zero ``b1``. There the ReLU's slope is a convention (handgrad takes 0, as torch.relu
    does), and a mask written ``>=`` instead of ``>`` gives a different gradient."""
    inputs = CASE.inputs(device, dtype, **CASE.small_dims)
    inputs["x"][0] = 0
    inputs["b1"].zero_()
    return inputs
