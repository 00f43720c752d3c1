"""The GPT training step of ``gpt_forms`` at width 256 (``gpt_forms.WIDE``: vocabulary
512, 8 heads of 32, a hidden layer of 1024, 2 blocks, 4 sequences) and context T = 256,
512 and 1024: how time and peak memory grow with T, for eager autograd, compiled autograd
and the hand training form. Autograd keeps each block's ``(B, H, T, T)`` softmax values
for its backward, memory that grows as T^2; the training form keeps two numbers a row of
them and computes the rest again, block by block, so it keeps what grows as T.

The step-by-step hand form (``manual``) is timed at T = 256 only: it returns every
chain-rule step, ``(B, H, T, T)`` ones among them, for the verdict, and at T = 1024 would
hold gigabytes for no one to read.
"""

import torch

from benchmarks import gpt_forms

Tensors = dict[str, torch.Tensor]

SIZES = (256, 512, 1024)  # T, the context
SIZE = "T"
TIMED_ONLY = (512, 1024)  # under --benchmark-disable T = 256 alone: the same code at any T
CASE, BASELINES = gpt_forms.CASE, gpt_forms.BASELINES
FORMS = gpt_forms.FORMS
MEASURED = ("autograd", "compiled", "train", "train_compiled")


def draw(device: str, t: int) -> Tensors:
    return gpt_forms.draw_at(device, {**gpt_forms.WIDE, "T": t})


def scale(t: int) -> tuple[str, int]:
    return gpt_forms.parameter_bytes({**gpt_forms.WIDE, "T": t})


def too_big(form: str, t: int) -> str | None:
    if form == "manual" and t > 256:
        return (f"manual at T={t}: the teaching form returns every (B, H, T, T) step for the "
                "verdict; timed at T = 256 only")
    return None
