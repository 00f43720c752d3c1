"""``verify``: every check of a case, run here and now, as a report (no pytest needed).

The same checks the plugin runs as tests (``handgrad.opinions``, ``handgrad.probes``),
collected into rows: which check, on which device and dtype, whether it held, and for the
verdict's checks the largest ratio of manual's error to autograd's (the rule allows
``K``); and, per device and dtype, the detection limit: the smallest uniform relative error
(every entry of the gradient times ``1 + eps``) the verdict rejects on the default draw.
A check that raises (the verdict's ``AssertionError``, gradcheck's ``GradcheckError``, the
``RuntimeError`` of a gradient of the wrong shape, a ``KeyError``...) is a failing row with
the message, never a traceback. For a notebook or a script::

    report = handgrad.verify(case)
    print(report)            # the table, the detection limits, the failures
    assert report.passed
"""

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch

from handgrad import mutants, opinions, probes
from handgrad.case import DTYPES, Case
from handgrad.judgement import Excused
from handgrad.measure import measure

LIMIT = "handgrad detection limit"  # a test's user property: (case, device, dtype, eps)
DRAWN = ("default", "large", "size one", "equal sizes", "layouts", "magnitudes", "non-finite")


def devices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@dataclass(frozen=True)
class Row:
    """One check of one case on one device and dtype."""

    case: str
    device: str
    dtype: str
    check: str
    passed: bool
    ratio: float | None = None  # the verdict's largest ratio, where the check is a verdict
    detail: str = ""  # why it failed, in the verdict's words
    limit: float | None = None  # the detection limit, measured by the generic mutants' check
    excused: bool = False  # failed where an opt-out covers it (full_precision_only)

    def cells(self) -> list[str]:
        ratio = "" if self.ratio is None else f"{self.ratio:.2f}x"
        return [self.case, self.device, self.dtype, self.check, ratio,
                "excused" if self.excused else "ok" if self.passed else "FAILS"]


@dataclass(frozen=True)
class Report:
    rows: tuple[Row, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if not r.passed]

    def worst_ratio(self, case: str, dtype: str) -> float:
        return max((r.ratio for r in self.rows if (r.case, r.dtype) == (case, dtype)
                    and r.ratio is not None), default=0.0)

    @property
    def limits(self) -> dict[tuple[str, str, str], float]:
        """The detection limit per (case, device, dtype)."""
        return {(r.case, r.device, r.dtype): r.limit for r in self.rows if r.limit is not None}

    def __str__(self) -> str:
        return "\n".join([table(self.rows), "", limits_table(self.limits), "", summary(self)])


def _verdicts(case: Case, device: str, dtype: torch.dtype) -> Iterator[tuple[str, Callable]]:
    """(check, run) for every verdict-based check in one device and dtype."""
    for form in case.forms:
        for draw in DRAWN:
            yield f"{form}, {draw}", lambda f=form, d=draw: opinions.excuse(
                opinions.draw_verdicts(case, d, device, dtype, f), case, f, dtype)
    yield "every chain-rule step", lambda: list(
        opinions.draw_verdicts(case, "default", device, dtype, steps=True))
    if case.library_op is not None:
        yield "forward against library_op", lambda: [
            opinions.library_op_verdict(case, device, dtype)]
    yield "SGD steps", lambda: [opinions.training(case, device, dtype)]


def failure(error: Exception) -> str:
    """Why a check failed: the verdict's message as it is, any other exception by its type
    and message (gradcheck's is a page of Jacobians: its first lines say it)."""
    if isinstance(error, AssertionError) and str(error):
        return str(error)
    lines = f"{type(error).__name__}: {error}".splitlines()
    return "\n".join(lines[:12] + [f"... ({len(lines) - 12} more lines)"] * (len(lines) > 12))


@dataclass(frozen=True)
class Rejected:
    """The generic mutants' check: whether every mutant failed, and the detection limit on
    the same measured draw."""

    every_mutant: bool
    limit: float


def _row(case: Case, device: str, dtype: str, check: str, run: Callable) -> Row:
    try:
        result = run()
    except Excused as why:  # an opt-out covers its failures: it holds, and says so
        return Row(case.name, device, dtype, check, True, detail=str(why), excused=True)
    except Exception as error:  # a wrong or broken gradient raises anything: a failing row
        return Row(case.name, device, dtype, check, False, detail=failure(error))
    if isinstance(result, Rejected):
        return Row(case.name, device, dtype, check, result.every_mutant, limit=result.limit,
                   detail="" if result.every_mutant else "a generic mutant passed the verdict")
    if isinstance(result, list):  # verdicts
        bad = [v for v in result if not v.passed]
        ratio = max((v.worst_ratio for v in result), default=0.0)
        return Row(case.name, device, dtype, check, not bad, ratio,
                   "\n".join(v.explain() for v in bad))
    return Row(case.name, device, dtype, check, bool(result))


def generic_mutants_rejected(case: Case, device, dtype) -> Rejected:
    inputs = case.inputs(device, dtype)
    right, measured = case.manual(inputs), measure(case.reference, inputs)
    return Rejected(all(not measured.judge(m.label, m.apply(right, inputs)).passed
                        for m in mutants.generic(case, dtype)),
                    probes.rejected_from(measured, right))


def checks(case: Case, devices_: Sequence[str], dtypes: Sequence[str]
           ) -> Iterator[tuple[str, str, str, Callable]]:
    """(device, dtype, check, run) for every check ``verify`` runs, in the dtypes the case
    declares where it declares some (a ``FunctionCase``'s ``dtypes``)."""
    dtypes = [d for d in dtypes if d in getattr(case, "dtypes", DTYPES)]
    for device in devices_:
        for name in dtypes:
            dtype = DTYPES[name]
            for check, run in _verdicts(case, device, dtype):
                yield device, name, check, run
            yield device, name, "generic mutants rejected", \
                lambda d=device, t=dtype: generic_mutants_rejected(case, d, t)
        for name in {"float64", "float32"} & set(dtypes):
            for example in case.examples:
                yield device, name, f"printed example {example.label}", \
                    lambda d=device, t=DTYPES[name], e=example: probes.assert_example(
                        case, e, d, t) or True
        if "float64" in dtypes:
            yield device, "float64", "finite differences", lambda d=device: opinions.gradcheck(
                case, d)
            yield device, "float64", "forward mode", lambda d=device: [
                opinions.adjoint_identity(case, d)]
            if hasattr(case.module, "hessians"):
                yield device, "float64", "hand Hessian", lambda d=device: [
                    opinions.hessian(case, d)]
    yield "-", "-", "bad input refused", lambda: all(
        ok for _, _, ok in probes.bad_input_outcomes(case))


def verify(case: Case | Iterable[Case], devices_: Sequence[str] | None = None,
           dtypes: Sequence[str] | None = None, progress: bool = False) -> Report:
    """Run every check on ``case`` (or on each of several) and return the report."""
    cases = [case] if isinstance(case, Case) else list(case)
    todo = [(c, *check) for c in cases
            for check in checks(c, devices_ or devices(), dtypes or list(DTYPES))]
    if progress:
        from tqdm import tqdm

        todo = tqdm(todo, desc="handgrad", unit="check", leave=False)
    return Report(tuple(_row(c, device, dtype, check, run) for c, device, dtype, check, run
                        in todo))


def table(rows: Sequence[Row]) -> str:
    """Rows as aligned text columns under a header (under 100 columns for our cases)."""
    cells = [["case", "device", "dtype", "check", "ratio", "verdict"],
             *(r.cells() for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(6)]
    return "\n".join("  ".join(c.rjust(w) if i == 4 else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
                     for r in cells)


def limits_table(limits: Mapping[tuple[str, str, str], float]) -> str:
    """Detection limits as text columns: a row per case and device, a column per dtype."""
    if not limits:
        return "detection limits: none measured"
    dtypes = [d for d in DTYPES if any(k[2] == d for k in limits)]
    cells = [["case", "device", *dtypes]]
    for case, device in dict.fromkeys(k[:2] for k in limits):
        cells.append([case, device, *(probes.limit_text(limits[case, device, d])
                                      if (case, device, d) in limits else "-" for d in dtypes)])
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    return "\n".join(["detection limits: the smallest uniform relative error (every entry of "
                      "the gradient", "times 1 + eps) the verdict rejects, on the default draw",
                      *("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                        for row in cells)])


def summary(report: Report) -> str:
    bad, excused = report.failures, [r for r in report.rows if r.excused]
    lines = [f"{len(report.rows) - len(bad)} of {len(report.rows)} checks hold"
             + (f" ({len(excused)} excused by full_precision_only: overflowing where "
                "autograd does not, right in float64)" if excused else "")
             + ("." if not bad else f"; {len(bad)} FAIL:")]
    lines += [f"\n{r.case} [{r.device}, {r.dtype}] {r.check}:\n{r.detail}" for r in bad]
    return "\n".join(lines)

