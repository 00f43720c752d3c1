"""A sweep: every form of a forms module (``mlp_forms``, ``attention_forms``,
``gpt_forms``) at each of its sizes, one group per device and size,
``<case>-<device>-<SIZE><size>``, each form timed in turn with the module's ``BASELINES``
for the ratios. Each form's result is judged by handgrad's verdict after it is timed; one
that leaves a gradient out fails, but for the forms a module lists in ``PARTIAL`` (the
MLP's floor), judged on those they give."""

from functools import lru_cache
from types import ModuleType

import pytest

from handgrad import measure


@lru_cache(maxsize=1)  # the tests run size by size; keep one size's tensors at a time
def prepared(forms: ModuleType, device: str, n: int):
    inputs = forms.draw(device, n)
    return inputs, measure(forms.CASE.reference, inputs)


@lru_cache(maxsize=1)
def baselines(forms: ModuleType, device: str, n: int):
    """The calls every form of a group is timed in turn with, for the ratios."""
    inputs, _ = prepared(forms, device, n)
    return {name: forms.FORMS[name](inputs) for name in forms.BASELINES}


def clear() -> None:
    prepared.cache_clear()
    baselines.cache_clear()


def timed_and_judged(bench, forms: ModuleType, device: str, n: int, form: str) -> None:
    if reason := forms.too_big(form, n):
        pytest.skip(reason)
    inputs, measured = prepared(forms, device, n)
    name = forms.CASE.name
    got = bench(f"{name}-{device}-{forms.SIZE}{n}", form, forms.FORMS[form](inputs),
                baselines=lambda: baselines(forms, device, n))
    if form in getattr(forms, "PARTIAL", ()):  # gives some gradients: judged on those
        got = {k: got.get(k, mine) for k, mine in measured.autograd.items()}
    measured.judge(f"{name} {forms.SIZE}={n}: what {form} timed", got).check()
