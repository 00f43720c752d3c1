"""Causal self-attention at 8 heads, width 256, T = 256 and 1024: autograd, the hand
backward and its lean form that recomputes the softmax (forms in ``attention_forms``).

One group per device and context, ``causal_self_attention-<device>-T<size>``. Each form's
result is judged by handgrad's verdict after it is timed (``sweep``). The peak memory
comes from fresh processes (``memory``); the test here holds the lean form to its aim.
"""

import pytest

from benchmarks import attention_forms, memory, sweep

LEAN_PEAK_OVER_AUTOGRAD = 0.7  # the aim: at most this much of autograd's peak at T = 1024


@pytest.mark.parametrize("form", attention_forms.FORMS)
@pytest.mark.parametrize("n", attention_forms.SIZES, ids=lambda t: f"T{t}")
def test_attention(bench, device, n, form):
    sweep.timed_and_judged(bench, attention_forms, device, n, form)


def test_lean_form_peak_memory(device):
    """The recompute form's peak at T = 1024 at most ``LEAN_PEAK_OVER_AUTOGRAD`` times
    autograd's, each measured in a fresh process."""
    peaks = {form: memory.measured(form, 1024, device, "attention")
             for form in ("autograd", "recompute")}
    assert peaks["recompute"] <= LEAN_PEAK_OVER_AUTOGRAD * peaks["autograd"], peaks
