"""Declares the fused RMSNorm to handgrad's pytest plugin: ``pytest`` then runs every
generic check on it (the forward and the gradients against the reference's in four dtypes,
large sizes, non-contiguous layouts of each input and of the grad_output, magnitudes, NaN
and inf, generated shapes, finite differences, forward mode, training steps, mutants, bad
input), and two it opts into: the double backward, and five runs of the backward equal bit
for bit. ``compiled=True`` would add the op under ``torch.compile``; its first compile takes
inductor tens of seconds on a CPU, so this quick example leaves it out."""

from rms_norm import RMSNorm, rms_norm_reference

from handgrad import FunctionCase

handgrad_cases = [
    FunctionCase(name="rms_norm", function=RMSNorm.apply, reference=rms_norm_reference,
                 shapes={"x": "N D", "weight": "D"}, dims={"N": 8, "D": 16},
                 double_backward=True, repeats=5),
]
