"""One training step of the tiny GPT (C = 32) and of a wider one (C = 256): forward,
backward and the AdamW update, by hand against autograd and ``torch.optim.AdamW`` (forms
in ``gpt_forms``). One group per device and width, ``gpt_training_step-<device>-C<width>``;
each form's result, the loss and every parameter after the step, is judged by handgrad's
verdict after it is timed (``sweep``). Peak memory: ``python -m benchmarks.memory --suite
gpt``, each figure from a fresh process.
"""

import pytest

from benchmarks import gpt_forms, sweep


@pytest.mark.parametrize("form", gpt_forms.FORMS)
@pytest.mark.parametrize("n", gpt_forms.SIZES, ids=lambda c: f"C{c}")
def test_gpt_training_step(bench, device, n, form):
    sweep.timed_and_judged(bench, gpt_forms, device, n, form)
