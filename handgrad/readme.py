"""The README's generated tables, each between ``<!-- generated: NAME -->`` and
``<!-- end: NAME -->``, rewritten by ``python -m cases --update-readme README.md``.

Two kinds: facts of the registry (the cases, the bad inputs tried), the same on every
machine; and measurements (the smallest error caught, the largest error ratio), which
another CPU's rounding moves a little. ``measured_cells_agree`` says how far a measurement
may move before the README is out of date.
"""

import itertools
from collections.abc import Callable, Sequence

from handgrad.case import DTYPES, Case
from handgrad.probes import LADDER, bad_input_outcomes, detection_limit
from handgrad.report import Report
from handgrad.verdict import K_FLOAT64, K
from handgrad.walkthrough import walkthrough


def cases_table(cases: Sequence[Case], report: Report | None = None) -> str:
    lines = ["| case | forward | hand-derived gradient | steps checked |",
             "| --- | --- | --- | --- |"]
    for case in cases:
        steps = case.manual(case.inputs(**case.small_dims), steps=True)
        lines.append(f"| `{case.name}` | `{case.formula}` | `{case.closed_form}` | "
                     f"{len(steps)} |")
    return "\n".join(lines)


def _limit(eps: float) -> str:
    """A detection limit; at the ladder's first rung, the limit is that or smaller."""
    return f"≤ {eps:.0e}" if eps == LADDER[0] else f"{eps:.0e}"


def limits_table(cases: Sequence[Case], report: Report | None = None) -> str:
    header = " | ".join(DTYPES)
    lines = [f"| case | {header} |", "| --- |" + " ---: |" * len(DTYPES)]
    for case in cases:
        cells = [_limit(detection_limit(case, dtype)) for dtype in DTYPES.values()]
        lines.append(f"| `{case.name}` | {' | '.join(cells)} |")
    return "\n".join(lines)


def ratios_table(cases: Sequence[Case], report: Report) -> str:
    header = " | ".join(DTYPES)
    lines = [f"| case | {header} |", "| --- |" + " ---: |" * len(DTYPES)]
    for case in cases:
        cells = [f"{report.worst_ratio(case.name, d):.2f}" for d in DTYPES]
        lines.append(f"| `{case.name}` | {' | '.join(cells)} |")
    held = sum(r.passed for r in report.rows)
    lines += ["", f"{held} of {len(report.rows)} checks hold on the CPU; "
                  f"{len(report.rows) - held} false failures. The rule allows {K:g}."]
    return "\n".join(lines)


def bad_input_table(cases: Sequence[Case], report: Report | None = None) -> str:
    counts: dict[str, list[int]] = {}
    for case in cases:
        for kind, _, ok in bad_input_outcomes(case):
            tally = counts.setdefault(kind, [0, 0])
            tally[0] += 1
            tally[1] += ok
    tried, refused = (sum(tally[i] for tally in counts.values()) for i in (0, 1))
    return (f"Bad input of {len(counts)} kinds ({'; '.join(counts)}) tried {tried} times over "
            f"the cases: {refused} refused with an error naming the argument.")


def walkthrough_excerpt(cases: Sequence[Case], report: Report | None = None) -> str:
    """The backward of the first printed example of the first case that has one."""
    case = next(c for c in cases if c.examples)
    lines = list(walkthrough(case))
    start = lines.index(next(line for line in lines if line.startswith("  backward")))
    end = lines.index("", start) if "" in lines[start:] else len(lines)
    return "\n".join(["```text", *lines[start:end], "```"])


TABLES: dict[str, Callable[..., str]] = {
    "cases": cases_table, "walkthrough": walkthrough_excerpt,
    "detection limits": limits_table, "error ratios": ratios_table,
    "bad input": bad_input_table}
MEASURED = ("detection limits", "error ratios")


def block(name: str, text: str) -> str:
    return f"<!-- generated: {name} -->\n{text}\n<!-- end: {name} -->"


def blocks(readme: str) -> dict[str, str]:
    """The generated tables a README holds, by name (a missing marker is an error)."""
    found = {}
    for name in TABLES:
        start, end = f"<!-- generated: {name} -->\n", f"\n<!-- end: {name} -->"
        if start not in readme or end not in readme:
            raise ValueError(f"README: no '{start.strip()}' ... '{end.strip()}' markers")
        found[name] = readme[readme.index(start) + len(start):readme.index(end)]
    return found


def generate(cases: Sequence[Case], report: Report) -> dict[str, str]:
    return {name: table(cases, report) for name, table in TABLES.items()}


def update(readme: str, tables: dict[str, str]) -> str:
    blocks(readme)  # every marker is there
    for name, text in tables.items():
        start = readme.index(f"<!-- generated: {name} -->")
        end = readme.index(f"<!-- end: {name} -->") + len(f"<!-- end: {name} -->")
        readme = readme[:start] + block(name, text) + readme[end:]
    return readme


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def measured_cells_agree(printed: str, measured: str) -> list[str]:
    """Where a fresh measurement moved further than rounding on another CPU explains: a
    detection limit by more than one rung of the ladder (a factor of 2.5), a ratio past the
    rule's ``K`` (``K_FLOAT64`` in the float64 column) or by more than 0.5. Returns the
    cells that moved, in words."""
    rung = max(b / a for a, b in itertools.pairwise(LADDER)) * 1.01
    moved, header = [], measured.splitlines()[0].split("|")
    for line_a, line_b in zip(printed.splitlines(), measured.splitlines(), strict=True):
        if not line_a.startswith("|"):
            if line_a != line_b:
                moved.append(f"{line_a!r} is now {line_b!r}")
            continue
        row = line_a.split("|")[1].strip()
        for a, b, column in zip(line_a.split("|"), line_b.split("|"), header, strict=True):
            x, y = _number(a.strip()), _number(b.strip())
            k = K_FLOAT64 if column.strip() == "float64" else K
            if x is None or y is None:
                far = a.strip() != b.strip()
            elif "e" in a:  # a detection limit, on the ladder
                far = max(x, y) / max(min(x, y), 1e-300) > rung
            else:  # an error ratio
                far = y > k or abs(x - y) > 0.5
            if far:
                moved.append(f"{row}: {a.strip()} is now {b.strip()}")
    return moved
