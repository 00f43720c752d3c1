"""A sweep: every form of a forms module (``mlp_forms``, ``attention_forms``,
``gpt_forms``) at each of its sizes, one group per device and size,
``<case>-<device>-<SIZE><size>``, each form timed in turn with the module's ``BASELINES``
for the ratios (``compiled`` among them where torch could compile it). Each form's result
is judged by handgrad's verdict after it is timed; one that leaves a gradient out fails,
but for the forms a module lists in ``PARTIAL`` (the MLP's floor), judged on those they
give."""

from functools import lru_cache
from types import ModuleType

import pytest

from benchmarks.compiled import CannotCompile
from handgrad import measure

TIMED = True  # False under --benchmark-disable, where a module's TIMED_ONLY sizes skip


@lru_cache(maxsize=1)  # the tests run size by size; keep one size's tensors at a time
def prepared(forms: ModuleType, device: str, n: int):
    inputs = forms.draw(device, n)
    return inputs, measure(forms.CASE.reference, inputs)


@lru_cache(maxsize=len(("autograd", "compiled", "floor")))  # one size's baselines
def made(forms: ModuleType, device: str, n: int, form: str):
    """``form``'s call at this size, made (and, compiled, compiled) once for its own
    benchmark and for the others' ratios; ``CannotCompile`` where torch could not."""
    inputs, _ = prepared(forms, device, n)
    try:
        return forms.FORMS[form](inputs)
    except CannotCompile as reason:
        return reason


def baselines(forms: ModuleType, device: str, n: int):
    """The calls every form of a group is timed in turn with, for the ratios."""
    calls = {name: made(forms, device, n, name) for name in forms.BASELINES}
    return {name: c for name, c in calls.items() if not isinstance(c, CannotCompile)}


def clear() -> None:
    prepared.cache_clear()
    made.cache_clear()


def timed_and_judged(bench, forms: ModuleType, device: str, n: int, form: str) -> None:
    if reason := forms.too_big(form, n):
        pytest.skip(reason)
    if not TIMED and n in getattr(forms, "TIMED_ONLY", ()):
        pytest.skip(f"{forms.SIZE}={n} is run only when timed: under --benchmark-disable the "
                    f"smallest {forms.SIZE} runs the same code")
    inputs, measured = prepared(forms, device, n)
    call = made(forms, device, n, form) if form in forms.BASELINES else forms.FORMS[form](inputs)
    if isinstance(call, CannotCompile):
        pytest.skip(str(call))
    name = forms.CASE.name
    got = bench(f"{name}-{device}-{forms.SIZE}{n}", form, call,
                baselines=lambda: baselines(forms, device, n))
    if form in getattr(forms, "PARTIAL", ()):  # gives some gradients: judged on those
        got = {k: got.get(k, mine) for k, mine in measured.autograd.items()}
    measured.judge(f"{name} {forms.SIZE}={n}: what {form} timed", got).check()
