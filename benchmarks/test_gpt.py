"""One training step of the tiny GPT (C = 32), and of a wider one (C = 256) at contexts
T = 256, 512 and 1024: forward, backward and the AdamW update, by hand (the teaching form
and the training form) against eager and compiled autograd with ``torch.optim.AdamW``
(forms in ``gpt_forms`` and ``gpt_context_forms``). One group per device and size,
``gpt_training_step-<device>-C32`` and ``gpt_training_step-<device>-T<context>``; each
form's result, the loss and every parameter after the step, is judged by handgrad's verdict
after it is timed (``sweep``). Peak memory: ``python -m benchmarks.memory --suite gpt``
and ``--suite gpt_context``, each figure from a fresh process.
"""

import pytest

from benchmarks import gpt_context_forms, gpt_forms, sweep


@pytest.mark.parametrize("form", gpt_forms.FORMS)
@pytest.mark.parametrize("n", gpt_forms.SIZES, ids=lambda c: f"C{c}")
def test_gpt_training_step(bench, device, n, form):
    sweep.timed_and_judged(bench, gpt_forms, device, n, form)


@pytest.mark.parametrize("form", gpt_context_forms.FORMS)
@pytest.mark.parametrize("n", gpt_context_forms.SIZES, ids=lambda t: f"T{t}")
def test_gpt_training_step_by_context(bench, device, n, form):
    sweep.timed_and_judged(bench, gpt_context_forms, device, n, form)
