"""What a case's ``library_op`` cannot say: batch norm's running statistics (buffers the op
updates, not its output), and that the check tells two close forwards apart. Each case's
forward against its library op is the plugin's generic ``test_forward_is_the_library_op``."""

import torch

from cases import BY_NAME
from handgrad import compare, opinions
from manual_grads import batch_norm


def test_batch_norm_running_statistics_are_torchs(device, dtype):
    """The buffers F.batch_norm updates in training: the unbiased variance, N - 1."""
    x = BY_NAME["batch_norm"].inputs(device, dtype)["x"]
    start = {"mean": torch.randn(x.shape[1], dtype=torch.float64).to(device, dtype),
             "var": torch.rand(x.shape[1], dtype=torch.float64).to(device, dtype) + 0.5}

    def by_hand(inputs):
        mean, var = batch_norm.running_statistics(inputs["x"], inputs["mean"], inputs["var"])
        return {"running_mean": mean, "running_var": var}

    def by_torch(inputs):
        mean, var = inputs["mean"].clone(), inputs["var"].clone()
        torch.nn.functional.batch_norm(inputs["x"], mean, var, training=True,
                                       momentum=batch_norm.MOMENTUM)
        return {"running_mean": mean, "running_var": var}

    compare(f"batch_norm running statistics [{device}, {dtype}]", by_hand, by_torch,
            {"x": x, **start}).check()


def test_the_tanh_forward_is_not_the_erf_op():
    """The two GELUs differ by up to 5e-4: pinned to the other's op, a forward fails."""
    tanh, erf = BY_NAME["gelu"], BY_NAME["gelu_erf"]
    assert not opinions.forward_matches(tanh, lambda x: erf.library_op(x=x["x"]),
                                        tanh.inputs(), "gelu against the erf op").passed
