"""The records of a verdict: ``Judgement`` (one gradient tensor: its errors, the rule's
ratio, where it broke, in words) and ``Verdict`` (every tensor of one comparison), with
the errors a failing check raises. The rule that fills them in is ``handgrad.verdict``'s;
the looks that measure autograd's side are ``handgrad.looks``'s."""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import torch

from handgrad.mean_rule import broken
from handgrad.nonfinite import OVERFLOWED


@dataclass(frozen=True)
class Judgement:
    """The verdict on one gradient tensor."""

    name: str
    dtype: torch.dtype
    device: str
    passed: bool
    err_manual: float  # against the truth; float64: against autograd
    err_autograd: float  # autograd's own error; float64: estimated from float32
    k: float  # the ratio allowed: K, or K + 1 in float64
    floor: float
    index: tuple[int, ...] | None = None  # the element that broke the rule, or the worst
    manual_at: float | None = None
    autograd_at: float | None = None
    truth_at: float | None = None
    problem: str | None = None  # a mismatch of shape, dtype or finiteness, in words
    looks: int = 1  # over how many runs autograd's error was measured (see Measured)
    how: str = ""  # and how, in words, where more than once
    mean_k: float = 0.0  # the mean rule's ratio (handgrad.mean_rule); 0 where not applied
    mean_manual: float = 0.0
    mean_autograd: float = 0.0
    mean_floor: float = 0.0
    diagnosis: str = ""  # for a failure below float64: wrong, or less accurate (Measured)
    err_digits: float = 0.0  # manual's error where the truth is above ``allowed``, below float64

    @property
    def allowed(self) -> float:
        return self.k * self.err_autograd + self.floor

    @property
    def broke_max(self) -> bool:
        return self.problem is not None or self.err_manual > self.allowed

    @property
    def broke_mean(self) -> bool:
        return bool(self.mean_k) and broken(self.mean_manual, self.mean_autograd,
                                            self.mean_floor)

    @property
    def broke_noise_only(self) -> bool:
        """Whether the rule is broken, and only at entries whose truth is within what it
        allows (``allowed``): entries it would pass as 0, so asks no digit of."""
        return (self.problem is None and self.broke_max and not self.broke_mean
                and self.err_digits <= self.allowed)

    @property
    def ratio(self) -> float:
        """err(manual) over autograd's own error plus ``floor / k``: the rule is
        ``ratio <= k``. Where autograd is far from exact this is err(manual) / err(autograd);
        where it is exact, the floor's share speaks for it."""
        if self.err_manual == 0:
            return 0.0
        return self.err_manual / (self.err_autograd + self.floor / self.k)

    def explain(self) -> str:
        dtype = str(self.dtype).removeprefix("torch.")
        head = f"d_{self.name}"
        if self.problem:
            return f"{head}: {self.problem}" + (f"\n  {self.diagnosis}" if self.diagnosis
                                                 else "")
        over = f", {self.how}" if self.how else ""
        if self.dtype == torch.float64:
            rule = (f"manual differs from autograd by {self.err_manual:.2e}, "
                    f"{_times(self.ratio)} autograd's own float64 rounding "
                    f"{self.err_autograd:.2e} (measured by its second difference{over})")
        else:
            rule = (f"manual's error {self.err_manual:.2e} is {_times(self.ratio)} "
                    f"autograd's own {self.err_autograd:.2e} in {dtype}{over and f' ({over[2:]})'}")
        text = (f"{head}: {rule}, with a floor of {self.floor:.1e} "
                f"shared out (allowed: {self.k:g}x)")
        if self.index is not None and self.broke_max:
            truth = "" if self.dtype == torch.float64 else f", truth {self.truth_at:.10g}"
            text += (f"\n  at index {self.index}: manual {self.manual_at:.10g}, "
                     f"autograd {self.autograd_at:.10g}{truth}")
        if self.broke_mean:
            ratio = self.mean_manual / (self.mean_autograd + self.mean_floor / self.mean_k)
            text += (f"\n  on average over the entries above the ratio rule's allowance: "
                     f"manual's mean error {self.mean_manual:.2e} is "
                     f"{_times(ratio)} autograd's mean {self.mean_autograd:.2e}, with a floor "
                     f"of {self.mean_floor:.1e} shared out (allowed: {self.mean_k:g}x)")
        return text + (f"\n  {self.diagnosis}" if self.diagnosis else "")


def _times(ratio: float) -> str:
    if ratio == float("inf"):
        return "inf x"
    return f"{ratio:.2f}x" if ratio < 1000 else f"{ratio:.2g}x"


class VerdictError(AssertionError):
    """A manual gradient failed the verdict; the message says which, where and by how much,
    and ``verdict`` is the verdict itself."""

    def __init__(self, message: str, verdict: "Verdict | None" = None):
        super().__init__(message)
        self.verdict = verdict


class LessAccurateWarning(UserWarning):
    """A right form that lost digits autograd keeps, at values hypothesis drew and not at the
    case's own values at the same sizes (``handgrad.generated``); ``-W
    error::handgrad.LessAccurateWarning`` makes it a failure."""


class Excused(AssertionError):
    """Failures that an opt-out covers (``handgrad.opinions.excused``): the plugin reports
    the test as XFAIL with this message, ``verify`` an excused row."""


GAVE_UP = "where autograd gave"  # a problem's words for manual off where autograd gave up
LESS_ACCURATE = "less accurate than autograd"  # the diagnosis of a failure right in float64


@dataclass(frozen=True)
class Verdict:
    """The judgements of one comparison: every gradient of one draw, form and dtype."""

    label: str  # what was compared: case, device, dtype, form and draw
    judgements: tuple[Judgement, ...]
    # Fills in each failure's ``diagnosis`` (``Measured.judge``), only when a failure is
    # explained: it runs manual again, and a check that expects a failure never asks.
    diagnose: Callable[["Verdict"], "Verdict"] | None = field(default=None, repr=False,
                                                               compare=False)

    @property
    def passed(self) -> bool:
        return all(j.passed for j in self.judgements)

    @property
    def failures(self) -> list[Judgement]:
        return [j for j in self.judgements if not j.passed]

    @property
    def worst_ratio(self) -> float:
        return max((j.ratio for j in self.judgements if not j.problem), default=0.0)

    @cached_property
    def diagnosed(self) -> "Verdict":
        """This verdict, each failure with its ``diagnosis`` where one is to be had."""
        return self if self.passed or self.diagnose is None else self.diagnose(self)

    @property
    def only_less_accurate(self) -> bool:
        """Whether it failed, and every failure is right in float64: less accurate than
        autograd in its dtype, not wrong (the diagnosis, ``Measured.judge``)."""
        return not self.passed and all(j.diagnosis.startswith(LESS_ACCURATE)
                                       for j in self.diagnosed.failures)

    @property
    def only_out_of_range(self) -> bool:
        """Whether it failed, and every failure is manual overflowing (NaN or inf where
        autograd is finite) and right in float64: what a form needs float32's range for."""
        return self.only_less_accurate and all(OVERFLOWED in (j.problem or "")
                                               for j in self.failures)

    def explain(self) -> str:
        if self.diagnosed is not self:
            return self.diagnosed.explain()
        failed = self.failures
        lines = [f"{self.label}: " + ("passes" if self.passed else
                                      f"{len(failed)} gradient(s) fail, the first "
                                      f"(in the backward's order) d_{failed[0].name}")]
        lines += [f"  {j.explain()}".replace("\n", "\n  ") for j in self.judgements
                  if not j.passed]
        return "\n".join(lines)

    def check(self) -> "Verdict":
        """Raise ``VerdictError`` with ``explain()`` if any gradient fails; else return self."""
        if not self.passed:
            raise VerdictError(self.explain(), self.diagnosed)
        return self
