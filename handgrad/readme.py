"""The README's generated tables, each between ``<!-- generated: NAME -->`` and
``<!-- end: NAME -->``, rewritten by ``python -m cases --update-readme README.md``.

Two kinds: facts of the registry (the cases, the bad inputs tried), the same on every
machine; and measurements (the smallest error caught, the largest error ratio), the
README's record of the machine it names. How far another CPU's measurement lands from that
record its rounding decides, and no rule derives; what holds on every CPU is the rule
itself, so ``measured_cells_hold`` asks only that: the README's rows, columns and other
lines; every ratio within ``K`` (``K_FLOAT64`` in float64); every detection limit at or
under ``limit_bound``; every check holding.
"""

import re
from collections.abc import Callable, Sequence

import torch

from handgrad.case import DTYPES, Case
from handgrad.probes import LADDER, bad_input_outcomes, detection_limit, limit_text
from handgrad.report import Report
from handgrad.verdict import FLOOR_ULPS, K_FLOAT64, K
from handgrad.walkthrough import walkthrough


def cases_table(cases: Sequence[Case], report: Report | None = None) -> str:
    lines = ["| case | forward | hand-derived gradient | steps checked |",
             "| --- | --- | --- | --- |"]
    for case in cases:
        steps = case.manual(case.inputs(**case.small_dims), steps=True)
        lines.append(f"| `{case.name}` | `{case.formula}` | `{case.closed_form}` | "
                     f"{len(steps)} |")
    return "\n".join(lines)


def limits_table(cases: Sequence[Case], report: Report | None = None) -> str:
    header = " | ".join(DTYPES)
    lines = [f"| case | {header} |", "| --- |" + " ---: |" * len(DTYPES)]
    for case in cases:
        cells = [limit_text(detection_limit(case, dtype)) for dtype in DTYPES.values()]
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


# A gradient's own error at its scale, in units of its last place, that a detection limit
# assumes of each side: the last few roundings of its chain. The README's limits come to at
# most 13 ulps of their dtype (bfloat16's 1e-1) for K times autograd's, manual's and the
# floor together, where this allows 16.
ERROR_ULPS = 4


def limit_bound(dtype: torch.dtype) -> float:
    """The largest detection limit the rule allows in ``dtype``: ``manual (1 + eps)`` is off
    the truth by ``eps`` at the gradient's scale, less manual's own error, and fails once that
    is past ``k`` times autograd's error plus the floor; with each side's error at most
    ``ERROR_ULPS`` ulps, that is once ``eps`` is past ``(k + 1) ERROR_ULPS + floor`` ulps,
    rounded up to the ladder (float64: 8e-15, the ladder's first rung)."""
    wide = dtype == torch.float64
    k, floor = (K_FLOAT64, 2 * FLOOR_ULPS) if wide else (K, FLOOR_ULPS)
    eps = torch.finfo(dtype).eps * ((k + 1) * ERROR_ULPS + floor)
    return min((rung for rung in LADDER if rung >= eps), default=LADDER[-1])


def _broken(cell: str, column: str) -> str | None:
    """How a measured cell breaks the rule in its dtype's column, in words; None if not."""
    dtype = DTYPES.get(column)
    if dtype is None:
        return None
    value = float(cell.removeprefix("≤").strip())
    if "e" in cell:  # a detection limit, on the ladder
        bound = limit_bound(dtype)
        return None if value <= bound * 1.01 else f"a limit of {cell}, past {bound:.0e}"
    k = K_FLOAT64 if dtype == torch.float64 else K
    return None if value <= k else f"a ratio of {cell}, past the rule's {k:g}"


def measured_cells_hold(printed: str, measured: str) -> list[str]:
    """Where a measured table (and the README's record of one) breaks what holds on every
    CPU (module docstring), in words. This machine's numbers are not compared with the
    README's: another CPU's rounding moves them, by what no rule bounds."""
    lines_a, lines_b = printed.splitlines(), measured.splitlines()
    if len(lines_a) != len(lines_b):
        return [f"{len(lines_a)} lines in the README, {len(lines_b)} measured"]
    problems, header = [], [c.strip() for c in lines_b[0].split("|")]
    for line_a, line_b in zip(lines_a, lines_b, strict=True):
        cells_a, cells_b = ([c.strip() for c in line.split("|")] for line in (line_a, line_b))
        if not line_a.startswith("| `") or len(cells_a) != len(cells_b) \
                or cells_a[1] != cells_b[1]:
            if line_a != line_b:  # a header, a row or a line of text that is not the README's
                problems.append(f"{line_a!r} is now {line_b!r}")
            continue
        for whose, cells in (("the README's", cells_a), ("measured", cells_b)):
            problems += [f"{cells[1]} {column} ({whose}): {why}" for cell, column in
                         zip(cells[2:-1], header[2:-1], strict=True)
                         if (why := _broken(cell, column))]
    for held, total in re.findall(r"(\d+) of (\d+) checks hold", measured):
        if held != total:
            problems.append(f"{int(total) - int(held)} of {total} checks fail")
    return problems
